"""The pre-traffic hook's smoke requests: every model of the config gets its metadata and, per version, an
infer request the router's own validation accepts."""

from __future__ import annotations

import dataclasses
import json

import pytest

from functions.config.model_types import ModelConfig, TensorSpec, ValueRange
from functions.config.models import load_models_config
from functions.domain.model_versions import model_versions
from functions.domain.smoke_requests import infer_body, smoke_requests, valid_value
from functions.domain.validation import validate_infer_request

CONFIG = load_models_config()


def test_every_model_gets_its_metadata_and_an_infer_per_version() -> None:
    requests = smoke_requests(CONFIG)
    for model in CONFIG.models:
        assert ("GET", f"/v2/models/{model.name}") in [(r.method, r.path) for r in requests]
        infers = [r for r in requests if r.method == "POST" and r.path_parameters["model"] == model.name]
        assert [r.path_parameters["version"] for r in infers] == list(model_versions(model))
        for request in infers:
            assert request.resource == "/v2/models/{model}/versions/{version}/infer"
            assert request.path == f"/v2/models/{model.name}/versions/{request.path_parameters['version']}/infer"


@pytest.mark.parametrize("model", CONFIG.models, ids=lambda model: model.name)
def test_each_models_infer_body_passes_the_routers_validation(model: ModelConfig) -> None:
    validated = validate_infer_request(model, infer_body(model))
    assert validated.batch_rows == 1


def test_the_default_config_smokes_iris_and_digits_inside_their_ranges() -> None:
    iris = json.loads(infer_body(CONFIG.model("iris")))  # type: ignore[arg-type]
    assert iris["inputs"] == [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [15.0] * 4}]
    digits = json.loads(infer_body(CONFIG.model("digits")))  # type: ignore[arg-type]
    assert digits["inputs"][0]["shape"] == [1, 64]
    assert set(digits["inputs"][0]["data"]) == {8.0}


@pytest.mark.parametrize(
    ("spec", "value"),
    [
        (TensorSpec("x", "FP32", (-1, 2), ValueRange(-1.0, 3.0)), 1.0),
        (TensorSpec("x", "FP64", (-1,), ValueRange(5.0, None)), 5.0),
        (TensorSpec("x", "FP16", (-1,), ValueRange(None, -2.0)), -2.0),
        (TensorSpec("x", "FP32", (-1,)), 0.0),
        (TensorSpec("x", "INT8", (-1,), ValueRange(0.5, 3.5)), 2),
        (TensorSpec("x", "UINT8", (-1,), ValueRange(None, 7.0)), 7),
        (TensorSpec("x", "INT64", (-1,), ValueRange(-3.0, None)), -3),
        (TensorSpec("x", "UINT16", (-1,)), 0),
        (TensorSpec("x", "BOOL", (-1,)), False),
        (TensorSpec("x", "BYTES", (-1,)), "smoke"),
    ],
    ids=lambda item: repr(item) if not isinstance(item, TensorSpec) else item.datatype,
)
def test_a_value_of_each_datatype_lies_inside_its_declared_range(spec: TensorSpec, value: object) -> None:
    assert valid_value(spec) == value
    assert type(valid_value(spec)) is type(value)


def test_a_model_without_a_sync_route_gets_no_infer() -> None:
    iris = CONFIG.model("iris")
    assert iris is not None
    async_only = dataclasses.replace(iris, route=dataclasses.replace(iris.route, sync=None))
    config = dataclasses.replace(CONFIG, models=(async_only,))
    assert [(r.method, r.path) for r in smoke_requests(config)] == [("GET", "/v2/models/iris")]
