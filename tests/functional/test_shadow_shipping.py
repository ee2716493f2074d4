"""The router's shadow shipping in-process, the real iris model behind it: a sampled request becomes one shadow
line through ``log_sink`` and its answer is the answer without a shadow, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.router_settings import RouterSettings
from functions.config.telemetry import SHADOW_LINE_KEY, SHADOW_SKIPPED_METRIC
from functions.domain.shadow import SHADOW_LINE_MAX_BYTES, ShadowRequest
from functions.handlers.router.app import RouterClients, create_app
from local.api_gateway import LocalLambdaContext
from local.sagemaker_runtime import LocalSageMakerRuntime
from tests.helpers.events import load_event

ROOT = Path(__file__).resolve().parents[2]


def shadow_config(tmp_path: Path, sample_rate: float) -> str:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    document["models"][0]["versions"] = [
        {
            "version": "2",
            "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"},
            "shadow": {"sample_rate": sample_rate, "tolerance": {"probabilities": 0.05}},
        }
    ]
    path = tmp_path / f"models-{sample_rate}.json"
    path.write_text(json.dumps(document))
    return str(path)


Router = Callable[[dict[str, Any]], dict[str, Any]]


def router(backend: Any, config_path: str | None, sink: Callable[[str], None]) -> Router:
    app = create_app(RouterSettings(models_config_path=config_path), None, RouterClients(backend, log_sink=sink))
    return lambda event: app(event, LocalLambdaContext(timeout_ms=28_000))


def infer_event(row: list[float], headers: dict[str, str] | None = None) -> dict[str, Any]:
    event = load_event("apigw_infer_valid")
    document = json.loads(event["body"])
    document["inputs"][0]["data"] = row
    event["body"] = json.dumps(document)
    event["headers"] = {**(event.get("headers") or {}), **(headers or {})}
    return event


def shadow_lines(lines: list[str]) -> list[ShadowRequest]:
    return [ShadowRequest.from_line(line) for line in lines if SHADOW_LINE_KEY in line]


def test_a_sampled_request_ships_one_line_and_its_answer_is_unchanged(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 1.0), lines.append)
    plain = router(sagemaker_backend, None, lambda _: None)
    event = infer_event([5.1, 3.5, 1.4, 0.2])
    answer, reference = shadowed(event), plain(event)
    assert (answer["statusCode"], answer["body"], answer.get("headers")) == (
        reference["statusCode"],
        reference["body"],
        reference.get("headers"),
    )
    (shipped,) = shadow_lines(lines)
    assert (shipped.model, shipped.version, shipped.primary_version) == ("iris", "2", "1")
    assert shipped.correlation_id == event["requestContext"]["requestId"]
    assert json.loads(shipped.request) == json.loads(event["body"])
    assert shipped.primary_answer == answer["body"]
    assert shipped.primary_latency_ms > 0


def test_only_the_sampled_share_ships_and_a_retry_meets_the_same_decision(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 0.25), lines.append)
    events = [infer_event([5.1, 3.5, 1.4, round(0.1 + index / 1000, 3)]) for index in range(200)]
    for event in events:
        assert shadowed(event)["statusCode"] == 200
    first = [line.request for line in shadow_lines(lines)]
    # Binomial(200, 0.25): mean 50, sd 6.1; 4 sd either side.
    assert 25 <= len(first) <= 75
    lines.clear()
    for event in events:
        shadowed(event)
    assert [line.request for line in shadow_lines(lines)] == first


def test_the_sticky_key_decides_the_sample_whatever_the_body(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 0.5), lines.append)
    counts = []
    for key in ("caller-a", "caller-b", "caller-c", "caller-d"):
        lines.clear()
        for index in range(10):
            shadowed(infer_event([5.1, 3.5, 1.4, 0.2 + index / 100], {"X-Routing-Key": key}))
        counts.append(len(shadow_lines(lines)))
    assert set(counts) <= {0, 10}


def test_a_line_over_the_log_event_cap_is_not_written_but_counted(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 1.0), lines.append)
    event = load_event("apigw_infer_valid")
    document = json.loads(event["body"])
    document["id"] = "x" * SHADOW_LINE_MAX_BYTES  # echoed in the answer too
    event["body"] = json.dumps(document)
    assert len(event["body"]) > SHADOW_LINE_MAX_BYTES
    assert shadowed(event)["statusCode"] == 200
    assert not shadow_lines(lines)
    # Other writers share the sink (the request capture): the skip is counted once.
    (skipped,) = [document for document in map(json.loads, lines) if SHADOW_SKIPPED_METRIC in document]
    assert (skipped[SHADOW_SKIPPED_METRIC], skipped["model"], skipped["version"]) == (1, "iris", "2")


def test_a_failing_sink_leaves_the_answer_a_200(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    def broken(_: str) -> None:
        raise OSError("stdout is closed")

    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 1.0), broken)
    answer = shadowed(infer_event([5.1, 3.5, 1.4, 0.2]))
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"])["outputs"][0]["data"] == [0]


@pytest.mark.parametrize("pinned", ["2"])
def test_a_request_pinned_to_the_shadow_version_is_not_shadowed(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime, pinned: str
) -> None:
    lines: list[str] = []
    shadowed = router(sagemaker_backend, shadow_config(tmp_path, 1.0), lines.append)
    event = infer_event([5.1, 3.5, 1.4, 0.2])
    event["resource"] = "/v2/models/{model}/versions/{version}/infer"
    event["path"] = f"/v2/models/iris/versions/{pinned}/infer"
    event["pathParameters"] = {"model": "iris", "version": pinned}
    shadowed(event)
    assert not shadow_lines(lines)


class VersionedEndpoints:
    """An endpoint per version, each answering its own ``model_version`` (as each version's container does):
    the real iris model behind every one of them."""

    def __init__(self, backend: SageMakerBackend, versions: dict[str, str]) -> None:
        self.backend, self.versions = backend, versions

    def invoke(self, endpoint: str, body: bytes, **options: Any) -> bytes:
        answer = json.loads(self.backend.invoke("iris", body, **options))
        answer["model_version"] = self.versions[endpoint]
        return json.dumps(answer).encode()

    def invoke_async(self, *args: Any, **options: Any) -> tuple[str, str | None]:
        raise AssertionError("no async path here")


def test_the_line_names_the_version_that_served_the_request(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    document["models"][0]["versions"] = [
        {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}},
        {"version": "3", "route": {"sync": "serverless", "serverless_endpoint": "iris-v3"},
         "shadow": {"sample_rate": 1.0}},
    ]  # fmt: skip
    document["models"][0]["traffic"] = {"1": 50, "2": 50}
    path = tmp_path / "models-weighted.json"
    path.write_text(json.dumps(document))
    lines: list[str] = []
    endpoints = VersionedEndpoints(sagemaker_backend, {"iris": "1", "iris-v2": "2", "iris-v3": "3"})
    shadowed = router(endpoints, str(path), lines.append)
    served = []
    for index in range(40):
        answer = shadowed(infer_event([5.1, 3.5, 1.4, round(0.1 + index / 1000, 3)]))
        assert answer["statusCode"] == 200
        served.append(json.loads(answer["body"])["model_version"])
    shipped = shadow_lines(lines)
    assert [line.primary_version for line in shipped] == served
    assert set(served) == {"1", "2"}, "the weights sent requests to both versions"
    assert {line.version for line in shipped} == {"3"}
