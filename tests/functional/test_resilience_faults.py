"""Fault x configuration -> status, headers, body, endpoint calls: the router through real boto3 against the
local SageMaker runtime with injected faults (retries, circuit breaker, fallbacks, deadline)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.model_variants import write_models_with_variants
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime

ROW = [5.1, 3.5, 1.4, 0.2]
STATIC = {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}
FAST_RETRY = {"max_attempts": 3, "base_delay_ms": 5, "max_delay_ms": 20}
BREAKER = {"failure_threshold": 4, "cooldown_s": 30}


def variants_config(directory: Path, retry: dict[str, int]) -> Path:
    """iris with no fallback, iris-static (a declared answer), iris-last-good; all on the 'iris' endpoint."""
    return write_models_with_variants(
        directory,
        {
            name: {"resilience": {"retry": retry, "breaker": BREAKER, "fallback": fallback}}
            for name, fallback in (("iris", None), ("iris-static", {"static": STATIC}), ("iris-last-good", "last_good"))
        },
    )


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return variants_config(tmp_path_factory.mktemp("config"), FAST_RETRY)


def new_router(config: Path, backend: Any, **clients: Any) -> RouterApp:
    """A fresh environment: every circuit closed, nothing cached."""
    return create_app(RouterSettings(models_config_path=str(config)), None, RouterClients(backend, **clients))


@pytest.fixture
def router(config_path: Path, sagemaker_backend: SageMakerBackend) -> RouterApp:
    return new_router(config_path, sagemaker_backend)


@pytest.fixture(autouse=True)
def clean(local_runtime: LocalSageMakerRuntime) -> Iterator[None]:
    local_runtime.clear_faults()
    local_runtime.seed(11)
    local_runtime.sync_invocations.clear()
    yield
    local_runtime.clear_faults()


def infer(
    router: RouterApp, model: str, row: list[float] = ROW, *, timeout_ms: int = 28_000
) -> tuple[int, dict[str, str], Any]:
    body = json.dumps({"id": "q1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]})
    event = build_rest_event("POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, body.encode())
    assert event is not None
    result = router(event, LocalLambdaContext(timeout_ms=timeout_ms))
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
    router: RouterApp, local_runtime: LocalSageMakerRuntime, fault: str, status: int, calls: int
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error=fault, error_rate=1.0))
    answer_status, headers, body = infer(router, "iris")
    assert answer_status == status
    assert local_runtime.sync_invocations["iris"] == calls
    assert "error" in body
    if status == 503:
        assert int(headers["Retry-After"]) >= 1
        assert "X-Inference-Degraded" not in headers


def test_a_transient_blip_is_absorbed_by_a_retry(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=0.2))
    statuses = [infer(router, "iris")[0] for _ in range(20)]
    assert statuses.count(200) >= 18  # each needs 3 throttles in a row to fail: under 1 in 100
    assert local_runtime.sync_invocations["iris"] > 20  # some succeeded only on a retry


def test_static_fallback_answers_200_marked_degraded(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelNotReadyException", error_rate=1.0))
    status, headers, body = infer(router, "iris-static")
    assert status == 200
    assert headers["X-Inference-Degraded"] == "model-not-ready; static-fallback"
    assert body == {"model_name": "iris-static", "model_version": "1", "id": "q1", **STATIC}


def test_static_fallback_is_not_used_for_a_model_error(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelError", error_rate=1.0, model_status=400))
    status, headers, _ = infer(router, "iris-static")
    assert status == 400  # the caller's input made the model fail: a fallback would hide that
    assert "X-Inference-Degraded" not in headers


def test_last_good_answers_the_same_question_from_memory(
    router: RouterApp, local_runtime: LocalSageMakerRuntime
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
    router: RouterApp, local_runtime: LocalSageMakerRuntime
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
    assert router.use_case.endpoint.breakers.for_endpoint("iris").state == "open"


def test_the_breaker_closes_after_a_good_probe(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=1.0))
    infer(router, "iris")
    infer(router, "iris")
    breaker = router.use_case.endpoint.breakers.for_endpoint("iris")
    assert breaker.state == "open"
    local_runtime.clear_faults()
    moved = breaker.clock() + 31
    breaker.clock = lambda: moved  # the breaker's injected clock, past the 30 s cooldown
    status, _, _ = infer(router, "iris")
    assert status == 200
    assert breaker.state == "closed"


def test_the_deadline_is_never_overrun(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(latency_ms=3_000))
    started = time.monotonic()
    status, _, body = infer(router, "iris", timeout_ms=1_500)
    elapsed_ms = (time.monotonic() - started) * 1000
    assert status == 504
    assert "did not answer" in body["error"] or "deadline" in body["error"] or "time" in body["error"]
    assert elapsed_ms < 1_500  # answered before the Lambda's remaining time ran out


def test_breaker_state_changes_are_counted(
    router: RouterApp, local_runtime: LocalSageMakerRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    infer(router, "iris")
    infer(router, "iris")
    output = capsys.readouterr().out
    assert '"BreakerTransitions"' in output
    assert '"state":"open"' in output.replace(" ", "")


def test_a_dropped_connection_is_retried_then_503(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="DropConnection", error_rate=1.0))
    status, headers, body = infer(router, "iris")
    assert status == 503
    assert local_runtime.sync_invocations["iris"] == 3
    assert "could not be reached" in body["error"]
    assert int(headers["Retry-After"]) >= 1


def test_a_spent_deadline_gets_the_static_fallback(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(latency_ms=3_000))
    started = time.monotonic()
    status, headers, body = infer(router, "iris-static", timeout_ms=1_500)
    assert (time.monotonic() - started) * 1000 < 1_500
    assert status == 200
    assert headers["X-Inference-Degraded"] == "deadline; static-fallback"
    assert body["outputs"] == STATIC["outputs"]


def test_an_open_circuit_gets_the_last_good_answer(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
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


# --- the README's fault table, cell by cell (sync configurations; spill_async cells: tests/e2e) -----------

CONFIGS = {"none": "iris", "static": "iris-static", "last_good": "iris-last-good"}
# fault -> (how to cause it, the Lambda's time in ms, endpoint calls the request makes, per config: status and
# X-Inference-Degraded (None: not degraded))
CELLS: dict[str, tuple[FaultSpec | str, int, int, dict[str, tuple[int, str | None]]]] = {
    "transient": (
        FaultSpec(error="InternalFailure", error_rate=1.0),
        28_000,
        3,
        {"none": (503, None), "static": (200, "internal-failure; static-fallback"),
         "last_good": (200, "internal-failure; last-good")},
    ),
    "circuit-open": (
        "trip",
        28_000,
        0,
        {"none": (503, None), "static": (200, "circuit-open; static-fallback"),
         "last_good": (200, "circuit-open; last-good")},
    ),
    "deadline": (
        FaultSpec(latency_ms=3_000),
        1_500,
        1,
        {"none": (504, None), "static": (200, "deadline; static-fallback"), "last_good": (200, "deadline; last-good")},
    ),
    "model-error-4xx": (
        FaultSpec(error="ModelError", error_rate=1.0, model_status=400),
        28_000,
        1,
        {"none": (400, None), "static": (400, None), "last_good": (400, None)},
    ),
    "model-error-5xx": (
        FaultSpec(error="ModelError", error_rate=1.0, model_status=500),
        28_000,
        1,
        {"none": (502, None), "static": (502, None), "last_good": (502, None)},
    ),
    "validation-error": (
        FaultSpec(error="ValidationError", error_rate=1.0),
        28_000,
        1,
        {"none": (502, None), "static": (502, None), "last_good": (502, None)},
    ),
}  # fmt: skip


def degraded_metrics(output: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]
    return [document for document in documents if "DegradedAnswers" in document]


@pytest.mark.parametrize(("fault", "config"), [(fault, config) for fault in CELLS for config in CONFIGS])
def test_fault_table_cell(
    router: RouterApp,
    local_runtime: LocalSageMakerRuntime,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    config: str,
) -> None:
    cause, timeout_ms, calls, expected = CELLS[fault]
    model = CONFIGS[config]
    fresh_status, _, fresh = infer(router, model)  # while healthy: the last good answer exists
    assert fresh_status == 200
    if cause == "trip":
        local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=1.0))
        infer(router, "iris")
        infer(router, "iris")  # 6 throttles: past the threshold of 4, the circuit is open for 30 s
    else:
        assert isinstance(cause, FaultSpec)
        local_runtime.set_fault("iris", cause)
    capsys.readouterr()
    calls_before = local_runtime.sync_invocations["iris"]
    started = time.monotonic()
    status, headers, body = infer(router, model, timeout_ms=timeout_ms)
    elapsed_ms = (time.monotonic() - started) * 1000
    expected_status, expected_degraded = expected[config]
    assert (status, headers.get("X-Inference-Degraded")) == (expected_status, expected_degraded), body
    assert local_runtime.sync_invocations["iris"] - calls_before == calls
    assert elapsed_ms < timeout_ms
    metrics = degraded_metrics(capsys.readouterr().out)
    if expected_degraded is None:
        assert "error" in body
        assert metrics == []
        if status == 503:
            # Retry-After: the breaker's remaining cooldown when open, else the next backoff's bound.
            assert headers["Retry-After"] == ("30" if fault == "circuit-open" else "1")
        return
    why, _, answered_by = expected_degraded.rpartition(";")
    assert [(m["model"], m["reason"], m["cause"]) for m in metrics] == [(model, answered_by.strip(), why.strip())]
    if config == "static":
        assert body == {"model_name": model, "model_version": "1", "id": "q1", **STATIC}
    else:
        assert body == fresh


@pytest.mark.parametrize(
    ("fallback", "expected"),
    [
        (None, (503, None)),
        ({"static": STATIC}, (200, "endpoint-not-found; static-fallback")),
        ("last_good", (503, None)),  # it never answered, so there is no last good answer
    ],
)
def test_an_endpoint_not_deployed_yet_is_503_or_the_fallback_without_retrying(
    local_runtime: LocalSageMakerRuntime,
    sagemaker_backend: SageMakerBackend,
    tmp_path: Path,
    fallback: Any,
    expected: tuple[int, str | None],
) -> None:
    # The platform's router learns a model before the model's stack has created its endpoint.
    resilience = {"retry": FAST_RETRY, "breaker": BREAKER, "fallback": fallback}
    route = {"sync": "serverless", "serverless_endpoint": "not-deployed"}
    config = write_models_with_variants(tmp_path, {"iris-new": {"route": route, "resilience": resilience}})
    status, headers, body = infer(new_router(config, sagemaker_backend), "iris-new")
    assert (status, headers.get("X-Inference-Degraded")) == expected, body
    if status == 503:
        assert headers["Retry-After"] == "30"
        assert "the model's stack is not deployed yet, or was removed" in body["error"]
    assert sum(local_runtime.sync_invocations.values()) == 0


def test_a_backoff_retry_after_is_the_next_backoffs_bound(
    local_runtime: LocalSageMakerRuntime, sagemaker_backend: SageMakerBackend, tmp_path: Path
) -> None:
    slow_backoff = {"max_attempts": 3, "base_delay_ms": 1_000, "max_delay_ms": 4_000}
    router = new_router(variants_config(tmp_path, slow_backoff), sagemaker_backend, sleep=lambda _: None)
    local_runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    status, headers, _ = infer(router, "iris")
    assert status == 503
    assert headers["Retry-After"] == "4"  # after the third attempt: min(4000, 1000 * 2**2) ms


def test_an_oversize_body_the_endpoint_refuses_is_413(local_runtime: LocalSageMakerRuntime) -> None:
    # The router's own limit (max_body_bytes <= 4 MB) stops such a body first; this is the endpoint's word.
    from functions.domain.errors import PayloadTooLargeError
    from functions.handlers.router.responses import status_for

    with pytest.raises(PayloadTooLargeError) as raised:
        SageMakerBackend().invoke("iris", b" " * (4 * 1024 * 1024 + 1), attempt_ms=lambda: 5_000)
    assert status_for(raised.value) == 413
    assert "oversize" in str(raised.value)


def test_an_endpoint_answer_that_is_not_json_is_a_502_not_a_crash(
    config_path: Path, local_runtime: LocalSageMakerRuntime, sagemaker_backend: SageMakerBackend
) -> None:
    class HtmlOnce:
        """Answers an HTML page first, then is the real endpoint."""

        def __init__(self) -> None:
            self.broken = True

        def invoke(self, endpoint: str, body: bytes, *, attempt_ms: Any, correlation_id: str | None = None) -> bytes:
            if self.broken:
                return b"\xff\xfe<html>oops</html>"
            return sagemaker_backend.invoke(endpoint, body, attempt_ms=attempt_ms, correlation_id=correlation_id)

    endpoint = HtmlOnce()
    router = new_router(config_path, endpoint)
    status, _, body = infer(router, "iris-last-good")
    assert status == 502
    assert "not UTF-8 JSON" in body["error"]
    # Nor was it kept as the last good answer: with the real endpoint failing, the same question gets a 503.
    endpoint.broken = False
    local_runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    assert infer(router, "iris-last-good")[0] == 503


# (fault, Lambda time in ms): retries, latency, cold starts and throttles together never outlive the Lambda.
DEADLINE_GRID = [
    ({"error": "ThrottlingException", "latency_ms": 400}, 1_500),
    ({"errors": {"ServiceUnavailable": 0.5}, "latency_ms": 700}, 2_000),
    ({"latency": {"distribution": "lognormal", "median_ms": 300, "p99_ms": 3_000}}, 1_200),
    ({"cold_start_s": 5}, 1_000),
    ({"latency": {"distribution": "uniform", "min_ms": 200, "max_ms": 2_500}, "errors": {"InternalFailure": 0.3}}, 1_800),
]  # fmt: skip


@pytest.mark.parametrize(("fault", "timeout_ms"), DEADLINE_GRID, ids=[str(i) for i in range(len(DEADLINE_GRID))])
def test_the_deadline_holds_under_mixed_faults(
    config_path: Path,
    sagemaker_backend: SageMakerBackend,
    local_runtime: LocalSageMakerRuntime,
    fault: dict[str, Any],
    timeout_ms: int,
) -> None:
    local_runtime.set_fault("iris", FaultSpec.from_json({**fault, "seed": 3}))
    for _ in range(2):
        # A fresh environment each time: each request meets the endpoint, not an open circuit. The backend is
        # fresh too, so the attempts create their clients while the deadline runs, as in a new environment.
        router = new_router(config_path, SageMakerBackend())
        started = time.monotonic()
        status, _, _ = infer(router, "iris", timeout_ms=timeout_ms)
        elapsed_ms = (time.monotonic() - started) * 1000
        assert elapsed_ms < timeout_ms, (fault, status, elapsed_ms)
        assert status in {200, 503, 504}
