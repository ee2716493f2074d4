"""The default config's in-Lambda model, digits: the router handler in-process with the sample events in
events/router (onnxruntime inside the router, no endpoint), its validation, and its artifact's build."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sklearn.datasets import load_digits

from functions.config.models import load_models_config
from layers.models.digits import build_digits
from local.api_gateway import build_rest_event
from local.sagemaker_runtime import LocalSageMakerRuntime
from tests.helpers.events import load_event

ROOT = Path(__file__).resolve().parents[2]


def test_digits_is_routed_to_the_router_next_to_iris_on_serverless_and_async() -> None:
    config = load_models_config()
    routes = {model.name: model.route for model in config.models}
    assert (routes["digits"].sync, routes["digits"].serverless_endpoint, routes["digits"].async_endpoint) == (
        "lambda",
        None,
        None,
    )
    assert (routes["iris"].sync, routes["iris"].serverless_endpoint, routes["iris"].async_endpoint) == (
        "serverless",
        "iris",
        "iris-async",
    )


def test_digits_answers_a_zero_from_inside_the_router(call_router: Any, local_runtime: LocalSageMakerRuntime) -> None:
    endpoint_calls = dict(local_runtime.sync_invocations)
    answer = call_router(load_event("apigw_digits_infer_valid"))
    assert local_runtime.sync_invocations == endpoint_calls  # no SageMaker call
    assert answer.status == 200
    assert (answer.body["model_name"], answer.body["model_version"], answer.body["id"]) == (
        "digits",
        "1",
        "sample-digits-1",
    )
    outputs = {output["name"]: output for output in answer.body["outputs"]}
    assert outputs["label"] == {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}
    assert outputs["probabilities"]["shape"] == [1, 10]
    assert sum(outputs["probabilities"]["data"]) == pytest.approx(1.0, abs=1e-5)
    assert max(outputs["probabilities"]["data"]) == outputs["probabilities"]["data"][0]


def test_digits_classifies_the_dataset_as_trained(call_router: Any) -> None:
    images, labels = load_digits(return_X_y=True)
    rows = load_models_config().model("digits").limits.max_batch_rows  # type: ignore[union-attr]
    body = {"inputs": [{"name": "pixels", "shape": [rows, 64], "datatype": "FP32", "data": images[:rows].tolist()}]}
    event = build_rest_event("POST", "/v2/models/digits/infer", {"Content-Type": "application/json"},
                             json.dumps(body).encode())  # fmt: skip
    assert event is not None
    answer = call_router(event)
    assert answer.status == 200
    predicted = next(output for output in answer.body["outputs"] if output["name"] == "label")["data"]
    accuracy = sum(int(p == t) for p, t in zip(predicted, labels[:rows], strict=True)) / rows
    assert accuracy >= 0.97  # the fit scores 0.985 on the whole dataset; a broken graph scores ~0.1


@pytest.mark.parametrize(("pixel", "shown"), [(17.0, "17.0"), (-1.0, "-1.0")])
def test_digits_refuses_a_pixel_outside_0_to_16_naming_the_input_and_element(
    call_router: Any, pixel: float, shown: str
) -> None:
    event = load_event("apigw_digits_infer_out_of_range")
    document = json.loads(event["body"])
    document["inputs"][0]["data"][9] = pixel
    event["body"] = json.dumps(document)
    answer = call_router(event)
    assert answer.status == 400
    assert f"input 'pixels': element 9 is {shown}, outside the declared range [0, 16]" in answer.body["error"]


def test_the_committed_out_of_range_event_is_refused(call_router: Any) -> None:
    answer = call_router(load_event("apigw_digits_infer_out_of_range"))
    assert answer.status == 400
    assert "input 'pixels': element 9 is 17, outside the declared range [0, 16]" in answer.body["error"]


def test_digits_metadata_and_readiness(call_router: Any) -> None:
    metadata = call_router(load_event("apigw_digits_model_metadata"))
    assert (metadata.status, metadata.body) == (
        200,
        {
            "name": "digits",
            "versions": ["1"],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1]},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
            ],
        },
    )
    ready = call_router(load_event("apigw_digits_model_ready"))
    assert (ready.status, ready.body) == (200, {"name": "digits", "ready": True})


def test_the_committed_artifact_is_a_fresh_build() -> None:
    committed = (ROOT / "layers" / "models" / "digits" / "model.onnx").read_bytes()
    assert build_digits.build() == committed, "run `python layers/models/digits/build_digits.py`"
    assert len(committed) < 8 * 1024
