"""The router handler in-process with the sample events in events/router, the real iris model behind it."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from functions.handlers.router.event_parts import prefers_async
from local.api_gateway import build_rest_event
from local.sample_events import SAMPLES, sample_event
from tests.helpers.events import EVENTS_DIR, load_event


def test_infer_valid_event_answers_iris_setosa(call_router: Any) -> None:
    answer = call_router(load_event("apigw_infer_valid"))
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    outputs = {output["name"]: output for output in answer.body["outputs"]}
    assert (answer.body["model_name"], answer.body["model_version"], answer.body["id"]) == ("iris", "1", "sample-1")
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}
    assert outputs["probabilities"]["shape"] == [1, 3]
    assert sum(outputs["probabilities"]["data"]) == pytest.approx(1.0, abs=1e-5)


def test_infer_nested_data_gives_the_same_answer_as_flat(call_router: Any) -> None:
    assert call_router(load_event("apigw_infer_nested")).body == call_router(load_event("apigw_infer_valid")).body


def test_infer_requested_output_only(call_router: Any) -> None:
    event = load_event("apigw_infer_valid")
    document = json.loads(event["body"])
    document["outputs"] = [{"name": "probabilities"}]
    event["body"] = json.dumps(document)
    assert [output["name"] for output in call_router(event).body["outputs"]] == ["probabilities"]


def test_infer_base64_body_is_decoded(call_router: Any) -> None:
    event = build_rest_event("POST", "/v2/models/iris/infer", {"Content-Type": "application/octet-stream"},
                             json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                                     "data": [6.7, 3.0, 5.2, 2.3]}]}).encode())  # fmt: skip
    assert event is not None
    assert event["isBase64Encoded"] is True
    assert call_router(event).body["outputs"][0]["data"] == [2]


@pytest.mark.parametrize(
    ("event_name", "status", "message"),
    [
        ("apigw_infer_malformed_json", 400, "request body is not valid JSON"),
        ("apigw_infer_wrong_datatype", 400, "input 'input': datatype INT8 does not match the model's FP32"),
        ("apigw_infer_wrong_shape", 400, "input 'input': shape [2, 4] needs 8 elements but data has 4"),
        ("apigw_infer_out_of_range", 400, "input 'input': element 3 is 99.0, outside the declared range [0, 30]"),
        ("apigw_infer_unknown_input", 400, "input 'features': unknown input for model 'iris'"),
        ("apigw_infer_unknown_model", 404, "model 'nope' is not served here"),
        ("apigw_model_metadata_unknown", 404, "model 'nope' is not served here"),
        ("apigw_unknown_path", 404, "no resource GET /v2/unknown"),
    ],
)
def test_invalid_event_answers_status_and_message(call_router: Any, event_name: str, status: int, message: str) -> None:
    answer = call_router(load_event(event_name))
    assert answer.status == status
    assert message in answer.body["error"]


def test_model_metadata_lists_signature(call_router: Any) -> None:
    assert call_router(load_event("apigw_model_metadata")).body == {
        "name": "iris",
        "versions": ["1"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }


@pytest.mark.parametrize(
    ("event_name", "body"),
    [
        ("apigw_health_live", {"live": True}),
        ("apigw_health_ready", {"ready": True}),
        ("apigw_model_ready", {"name": "iris", "ready": True}),
        (
            "apigw_server_metadata",
            {"name": "inference-router", "version": "0.1.0", "extensions": ["binary_tensor_data"]},
        ),
    ],
)
def test_health_and_metadata_routes_answer(call_router: Any, event_name: str, body: dict[str, Any]) -> None:
    answer = call_router(load_event(event_name))
    assert (answer.status, answer.body) == (200, body)


def test_logs_carry_the_api_gateway_request_id(call_router: Any, router_app: Any) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(router_app.logger.registered_formatter)
    router_app.logger.addHandler(handler)
    try:
        event = load_event("apigw_infer_wrong_shape")
        call_router(event)
    finally:
        router_app.logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines
    assert all(line["correlation_id"] == event["requestContext"]["requestId"] for line in lines)
    assert lines[-1]["status"] == 400


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_committed_sample_event_has_the_local_api_shape(name: str) -> None:
    committed = json.loads((EVENTS_DIR / "router" / f"{name}.json").read_text())
    fresh = sample_event(name)
    for volatile in ("requestId", "extendedRequestId", "requestTime", "requestTimeEpoch"):
        committed["requestContext"].pop(volatile)
        fresh["requestContext"].pop(volatile)
    assert committed == fresh, "events/router is stale: run `python -m local.sample_events`"


def test_every_sample_event_file_is_generated() -> None:
    assert {path.stem for path in Path(EVENTS_DIR / "router").glob("*.json")} == set(SAMPLES)


@pytest.mark.parametrize(
    ("prefer", "asked"),
    [
        ("respond-async", True),
        ("respond-async; wait=5", True),
        ("Respond-Async ;wait=5, return=minimal", True),
        ("wait=5, respond-async", True),
        ("return=minimal", False),
        ("respond-asynchronously", False),
        ("", False),
    ],
)
def test_prefer_respond_async_is_read_with_rfc_7240_parameters(prefer: str, asked: bool) -> None:
    assert prefers_async(prefer) is asked
