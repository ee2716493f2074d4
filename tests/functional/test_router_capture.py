"""Capture in the router in-process, the real iris (serverless, local runtime) and digits (in-Lambda) models
behind it: a sampled answered request becomes one capture line through ``log_sink``, with only the
allow-listed inputs, and its answer is the answer without capture, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings, SettingsError
from functions.config.telemetry import CAPTURE_ERRORS_METRIC, CAPTURE_SKIPPED_METRIC
from functions.domain.failures import DegradedBy, FailureReason
from functions.domain.infer import InferCall
from functions.domain.outcomes import Answered, Degraded
from functions.domain.validation import validate_infer_request
from functions.handlers.router.app import RouterClients, create_app
from functions.handlers.router.capture import RequestCapture
from local.api_gateway import LocalLambdaContext
from local.sagemaker_runtime import LocalSageMakerRuntime
from tests.helpers.events import load_event

ROOT = Path(__file__).resolve().parents[2]
Router = Callable[[dict[str, Any]], dict[str, Any]]


def capture_config(tmp_path: Path, capture: dict[str, Any] | None, *, digits: dict[str, Any] | None = None) -> str:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    for model in document["models"]:
        model.pop("capture", None)
        block = capture if model["name"] == "iris" else digits
        if block is not None:
            model["capture"] = block
    path = tmp_path / "models.json"
    path.write_text(json.dumps(document))
    return str(path)


def router(backend: Any, config_path: str, sink: Callable[[str], None], rate: float | None = None) -> Router:
    settings = RouterSettings(models_config_path=config_path, capture_sample_rate=rate)
    app = create_app(settings, None, RouterClients(backend, log_sink=sink))
    return lambda event: app(event, LocalLambdaContext(timeout_ms=28_000))


def infer_event(rows: list[list[float]], request_id: str = "req-1", model: str = "iris") -> dict[str, Any]:
    event = load_event("apigw_infer_valid")
    document = json.loads(event["body"])
    document["inputs"][0]["data"] = rows
    document["inputs"][0]["shape"] = [len(rows), len(rows[0])]
    if model != "iris":
        document["inputs"][0]["name"] = "pixels"
    event["body"] = json.dumps(document)
    event["path"] = event["path"].replace("/iris/", f"/{model}/")
    event["pathParameters"] = {**(event.get("pathParameters") or {}), "model": model}
    event["requestContext"]["requestId"] = request_id
    return event


def captures(lines: list[str]) -> list[dict[str, Any]]:
    return [document for line in lines if (document := json.loads(line)).get("capture") == 1]


def metric_counts(lines: list[str], metric: str) -> int:
    return sum(json.loads(line).get(metric, 0) for line in lines if "_aws" in line)


IRIS_CAPTURE = {"sample_rate": 1.0, "inputs": ["input"], "outputs": True}


def test_a_captured_request_writes_one_record_and_its_answer_is_unchanged(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    captured = router(sagemaker_backend, capture_config(tmp_path, IRIS_CAPTURE), lines.append)
    plain = router(sagemaker_backend, capture_config(tmp_path / "..", None), lambda _: None)
    event = infer_event([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    answer, reference = captured(event), plain(event)
    assert (
        (answer["statusCode"], answer["body"])
        == (reference["statusCode"], reference["body"])
        == (
            200,
            reference["body"],
        )
    )
    (record,) = captures(lines)
    assert set(record) == {"capture", "model", "version", "timestamp", "inputs", "outputs"}
    assert (record["model"], record["version"]) == ("iris", "1")
    assert record["inputs"] == {"input": {"shape": [2, 4], "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}}
    outputs = {output["name"]: output for output in json.loads(answer["body"])["outputs"]}
    assert record["outputs"]["label"] == {"shape": [2], "data": outputs["label"]["data"]}
    assert record["outputs"]["probabilities"]["shape"] == [2, 3]
    assert len(record["outputs"]["probabilities"]["data"]) == 6


def test_only_the_allow_listed_inputs_are_captured(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    config = capture_config(tmp_path, {"sample_rate": 1.0, "inputs": [], "outputs": True})
    assert router(sagemaker_backend, config, lines.append)(infer_event([[5.1, 3.5, 1.4, 0.2]]))["statusCode"] == 200
    (record,) = captures(lines)
    assert record["inputs"] == {}
    assert set(record["outputs"]) == {"label", "probabilities"}


def test_outputs_are_left_out_when_not_wanted(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    config = capture_config(tmp_path, {"sample_rate": 1.0, "inputs": ["input"], "outputs": False})
    router(sagemaker_backend, config, lines.append)(infer_event([[5.1, 3.5, 1.4, 0.2]]))
    (record,) = captures(lines)
    assert "outputs" not in record
    assert record["inputs"]["input"]["data"] == [5.1, 3.5, 1.4, 0.2]


def test_the_in_lambda_route_is_captured_too(tmp_path: Path, sagemaker_backend: SageMakerBackend) -> None:
    lines: list[str] = []
    config = capture_config(tmp_path, None, digits={"sample_rate": 1.0, "inputs": ["pixels"]})
    answer = router(sagemaker_backend, config, lines.append)(infer_event([[1.0] * 64], model="digits"))
    assert answer["statusCode"] == 200
    (record,) = captures(lines)
    assert record["model"] == "digits"
    assert record["inputs"]["pixels"] == {"shape": [1, 64], "data": [1.0] * 64}
    assert record["outputs"]["label"]["data"] == json.loads(answer["body"])["outputs"][0]["data"]


def test_a_model_without_a_capture_block_is_never_captured_even_with_the_override(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    captured = router(sagemaker_backend, capture_config(tmp_path, None), lines.append, rate=1.0)
    assert captured(infer_event([[5.1, 3.5, 1.4, 0.2]]))["statusCode"] == 200
    assert captures(lines) == []


def test_the_sampled_share_follows_the_request_id_and_the_override_takes_everything(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    config = capture_config(tmp_path, {"sample_rate": 0.25, "inputs": ["input"]})
    sampled = router(sagemaker_backend, config, lines.append)
    events = [infer_event([[5.1, 3.5, 1.4, 0.2]], request_id=f"req-{index}") for index in range(200)]
    for event in events:
        sampled(event)
    first = len(captures(lines))
    # Binomial(200, 0.25): mean 50, sd 6.1; 4 sd either side.
    assert 25 <= first <= 75
    lines.clear()
    for event in events:
        sampled(event)
    assert len(captures(lines)) == first  # the same request ids, the same decisions
    lines.clear()
    everything = router(sagemaker_backend, config, lines.append, rate=1.0)
    for event in events[:20]:
        everything(event)
    assert len(captures(lines)) == 20


def test_a_refused_request_is_not_captured(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    captured = router(sagemaker_backend, capture_config(tmp_path, IRIS_CAPTURE), lines.append)
    assert captured(infer_event([[5.1, 3.5, 1.4, 99.0]]))["statusCode"] == 400
    assert captures(lines) == []


def test_a_line_over_the_log_event_cap_is_dropped_and_counted(tmp_path: Path) -> None:
    config = load_models_config(capture_config(tmp_path, {**IRIS_CAPTURE, "max_rows": 1000}))
    body = b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'
    request = validate_infer_request(config.models[0], body)
    # 1,000 rows of 20 long floats: ~400 KB of JSON, over the cap even though max_rows keeps every row.
    wide = [[0.12345678901234567] * 20] * 1000
    answer = json.dumps({"outputs": [{"name": "scores", "shape": [1000, 20], "datatype": "FP64", "data": wide}]})
    lines: list[str] = []
    capture = RequestCapture(config, lines.append)
    call = InferCall(model="iris", body=body, correlation_id="req-1")
    capture.record(call, Answered(answer.encode(), request))
    assert captures(lines) == []
    assert metric_counts(lines, CAPTURE_SKIPPED_METRIC) == 1
    lines.clear()
    narrow = json.dumps({"outputs": [{"name": "scores", "shape": [1000, 1], "datatype": "FP64", "data": wide[0]}]})
    capture.record(call, Answered(narrow.encode(), request))
    assert len(captures(lines)) == 1


def test_a_large_batch_is_captured_by_its_evenly_spaced_rows_up_to_max_rows(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    lines: list[str] = []
    config = capture_config(tmp_path, {**IRIS_CAPTURE, "max_rows": 10})
    rows = [[float(index % 7), 3.0, 1.5, 0.25] for index in range(1000)]
    assert router(sagemaker_backend, config, lines.append)(infer_event(rows))["statusCode"] == 200
    (record,) = captures(lines)
    assert record["inputs"]["input"]["shape"] == [10, 4]
    assert record["inputs"]["input"]["data"][::4] == [float(index * 100 % 7) for index in range(10)]
    assert record["outputs"]["label"]["shape"] == [10]
    assert record["outputs"]["probabilities"]["shape"] == [10, 3]


def test_an_answer_that_is_not_json_is_counted_as_a_capture_error(tmp_path: Path) -> None:
    config = load_models_config(capture_config(tmp_path, IRIS_CAPTURE))
    body = b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'
    lines: list[str] = []
    RequestCapture(config, lines.append).record(
        InferCall(model="iris", body=body), Answered(b"<html>", validate_infer_request(config.models[0], body))
    )
    assert captures(lines) == []
    assert metric_counts(lines, CAPTURE_ERRORS_METRIC) == 1


def test_a_fallback_answer_is_not_captured(tmp_path: Path) -> None:
    config = load_models_config(capture_config(tmp_path, IRIS_CAPTURE))
    lines: list[str] = []
    degraded = Degraded(b'{"outputs": []}', FailureReason.DEADLINE, DegradedBy.STATIC_FALLBACK)
    RequestCapture(config, lines.append).record(InferCall(model="iris", body=b"{}"), degraded)
    assert lines == []


def test_a_failing_sink_is_counted_and_the_answer_still_leaves(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    counted: list[str] = []

    def sink(line: str) -> None:
        if '"capture":1' in line:
            raise OSError("stdout closed")
        counted.append(line)

    answer = router(sagemaker_backend, capture_config(tmp_path, IRIS_CAPTURE), sink)(
        infer_event([[5.1, 3.5, 1.4, 0.2]])
    )
    assert answer["statusCode"] == 200
    assert metric_counts(counted, CAPTURE_ERRORS_METRIC) == 1


def test_a_sink_that_always_fails_never_reaches_the_caller(
    tmp_path: Path, sagemaker_backend: SageMakerBackend, runtime: LocalSageMakerRuntime
) -> None:
    def sink(line: str) -> None:
        raise OSError("stdout closed")

    answer = router(sagemaker_backend, capture_config(tmp_path, IRIS_CAPTURE), sink)(
        infer_event([[5.1, 3.5, 1.4, 0.2]])
    )
    assert answer["statusCode"] == 200


@pytest.mark.parametrize("raw", ["0", "1.5", "half"])
def test_a_wrong_capture_sample_rate_override_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match=r"CAPTURE_SAMPLE_RATE=.*must be a fraction in \(0, 1\]"):
        RouterSettings.from_env({"CAPTURE_SAMPLE_RATE": raw})


def test_the_override_is_read_from_the_environment() -> None:
    assert RouterSettings.from_env({"CAPTURE_SAMPLE_RATE": "1"}).capture_sample_rate == 1.0
    assert RouterSettings.from_env({}).capture_sample_rate is None
