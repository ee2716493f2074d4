"""Fault x configuration -> status, headers, body, endpoint calls: the router through real boto3 against the
local SageMaker runtime with injected faults (retries, circuit breaker, fallbacks, deadline)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.api_gateway import LocalLambdaContext, build_rest_event
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from local.stack import fresh_import

ROOT = Path(__file__).resolve().parents[2]
ROW = [5.1, 3.5, 1.4, 0.2]
STATIC = {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}
FAST_RETRY = {"max_attempts": 3, "base_delay_ms": 5, "max_delay_ms": 20}
BREAKER = {"failure_threshold": 4, "cooldown_s": 30}


@pytest.fixture(scope="module")
def router(
    local_runtime: LocalSageMakerRuntime, router_module: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    """iris with no fallback, iris-static (a declared answer), iris-last-good; all on the 'iris' endpoint."""
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    base = document["models"][0]
    base["resilience"] = {"retry": FAST_RETRY, "breaker": BREAKER}
    for name, fallback in (("iris-static", {"static": STATIC}), ("iris-last-good", "last_good")):
        model = json.loads(json.dumps(base))
        model["name"] = name
        model["resilience"] = {"retry": FAST_RETRY, "breaker": BREAKER, "fallback": fallback}
        document["models"].append(model)
    config = tmp_path_factory.mktemp("config") / "models.json"
    config.write_text(json.dumps(document))
    os.environ["MODELS_CONFIG_PATH"] = str(config)
    try:
        yield fresh_import("functions.router.handler")
    finally:
        os.environ.pop("MODELS_CONFIG_PATH", None)
        fresh_import("functions.router.handler")


@pytest.fixture(autouse=True)
def clean(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> Iterator[None]:
    router.router.breakers.reset()
    router.router.last_good.clear()
    local_runtime.clear_faults()
    local_runtime.seed(11)
    local_runtime.sync_invocations.clear()
    yield
    local_runtime.clear_faults()


def infer(
    router: ModuleType, model: str, row: list[float] = ROW, *, timeout_ms: int = 28_000
) -> tuple[int, dict[str, str], Any]:
    body = json.dumps({"id": "q1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]})
    event = build_rest_event("POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, body.encode())
    result = router.lambda_handler(event, LocalLambdaContext(timeout_ms=timeout_ms))
    headers = {**(result.get("headers") or {})}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    return result["statusCode"], headers, json.loads(result["body"])


@pytest.mark.parametrize(
    ("fault", "status", "calls"),
    [
        ("ThrottlingException", 503, 3),
        ("ModelNotReadyException", 503, 3),
        ("InternalFailure", 503, 3),
        ("ServiceUnavailable", 503, 3),
        ("InternalDependencyException", 503, 3),
        ("ModelError", 502, 1),  # the model's own 500: never retried
        ("ValidationError", 502, 1),  # refused request: never retried
    ],
)
def test_without_fallback_transient_faults_are_retried_then_503(
    router: ModuleType, local_runtime: LocalSageMakerRuntime, fault: str, status: int, calls: int
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error=fault, error_rate=1.0))
    answer_status, headers, body = infer(router, "iris")
    assert answer_status == status
    assert local_runtime.sync_invocations["iris"] == calls
    assert "error" in body
    if status == 503:
        assert int(headers["Retry-After"]) >= 1
        assert "X-Inference-Degraded" not in headers


def test_a_transient_blip_is_absorbed_by_a_retry(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=0.2))
    statuses = [infer(router, "iris")[0] for _ in range(20)]
    assert statuses.count(200) >= 18  # each needs 3 throttles in a row to fail: under 1 in 100
    assert local_runtime.sync_invocations["iris"] > 20  # some succeeded only on a retry


def test_static_fallback_answers_200_marked_degraded(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelNotReadyException", error_rate=1.0))
    status, headers, body = infer(router, "iris-static")
    assert status == 200
    assert headers["X-Inference-Degraded"] == "model-not-ready; static-fallback"
    assert body == {"model_name": "iris-static", "model_version": "1", "id": "q1", **STATIC}


def test_static_fallback_is_not_used_for_a_model_error(
    router: ModuleType, local_runtime: LocalSageMakerRuntime
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelError", error_rate=1.0, model_status=400))
    status, headers, _ = infer(router, "iris-static")
    assert status == 400  # the caller's input made the model fail: a fallback would hide that
    assert "X-Inference-Degraded" not in headers


def test_last_good_answers_the_same_question_from_memory(
    router: ModuleType, local_runtime: LocalSageMakerRuntime
) -> None:
    fresh_status, _, fresh = infer(router, "iris-last-good")
    assert fresh_status == 200
    local_runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    status, headers, body = infer(router, "iris-last-good")
    assert status == 200
    assert headers["X-Inference-Degraded"] == "service-unavailable; last-good"
    assert body == fresh
    other_status, _, _ = infer(router, "iris-last-good", [6.7, 3.0, 5.2, 2.3])
    assert other_status == 503  # never seen: nothing to fall back on


def test_breaker_opens_then_skips_the_endpoint_and_fallbacks_answer(
    router: ModuleType, local_runtime: LocalSageMakerRuntime
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=1.0))
    first_status, _, _ = infer(router, "iris")
    second_status, _, _ = infer(router, "iris")  # 6 failures in all: past the threshold of 4
    assert (first_status, second_status) == (503, 503)
    calls = local_runtime.sync_invocations["iris"]
    status, headers, body = infer(router, "iris")
    assert status == 503
    assert "circuit open" in body["error"]
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert local_runtime.sync_invocations["iris"] == calls  # the endpoint was not called
    status, headers, _ = infer(router, "iris-static")
    assert status == 200
    assert headers["X-Inference-Degraded"] == "circuit-open; static-fallback"
    assert router.router.breakers.for_endpoint("iris").state == "open"


def test_the_breaker_closes_after_a_good_probe(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=1.0))
    infer(router, "iris")
    infer(router, "iris")
    breaker = router.router.breakers.for_endpoint("iris")
    assert breaker.state == "open"
    local_runtime.clear_faults()
    moved = breaker.clock() + 31
    breaker.clock = lambda: moved  # the breaker's injected clock, past the 30 s cooldown
    status, _, _ = infer(router, "iris")
    assert status == 200
    assert breaker.state == "closed"


def test_the_deadline_is_never_overrun(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(latency_ms=3_000))
    started = time.monotonic()
    status, _, body = infer(router, "iris", timeout_ms=1_500)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert status == 504
    assert "did not answer" in body["error"] or "deadline" in body["error"] or "time" in body["error"]
    assert elapsed_ms < 1_500  # answered before the Lambda's remaining time ran out


def test_breaker_state_changes_are_counted(
    router: ModuleType, local_runtime: LocalSageMakerRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    router.router.breakers.reset()
    local_runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    infer(router, "iris")
    infer(router, "iris")
    output = capsys.readouterr().out
    assert '"BreakerTransitions"' in output
    assert '"state":"open"' in output.replace(" ", "")


def test_a_dropped_connection_is_retried_then_503(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="DropConnection", error_rate=1.0))
    status, headers, body = infer(router, "iris")
    assert status == 503
    assert local_runtime.sync_invocations["iris"] == 3
    assert "could not be reached" in body["error"]
    assert int(headers["Retry-After"]) >= 1


def test_a_spent_deadline_gets_the_static_fallback(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(latency_ms=3_000))
    started = time.monotonic()
    status, headers, body = infer(router, "iris-static", timeout_ms=1_500)
    assert (time.monotonic() - started) * 1000 < 1_500
    assert status == 200
    assert headers["X-Inference-Degraded"] == "deadline; static-fallback"
    assert body["outputs"] == STATIC["outputs"]


def test_an_open_circuit_gets_the_last_good_answer(router: ModuleType, local_runtime: LocalSageMakerRuntime) -> None:
    _, _, fresh = infer(router, "iris-last-good")
    local_runtime.set_fault("iris", FaultSpec(error="InternalFailure", error_rate=1.0))
    infer(router, "iris")
    infer(router, "iris")  # the endpoint's circuit is open now
    calls = local_runtime.sync_invocations["iris"]
    status, headers, body = infer(router, "iris-last-good")
    assert status == 200
    assert headers["X-Inference-Degraded"] == "circuit-open; last-good"
    assert body == fresh
    assert local_runtime.sync_invocations["iris"] == calls
