"""The model config fails loudly, naming the file and the field."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.model_types import BatchingConfig
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config, parse_model_signature, serving_signature

VALID: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())


def test_load_shipped_config_gives_typed_iris_model() -> None:
    iris = load_models_config().model("iris")
    assert iris is not None
    assert (iris.inputs[0].datatype, iris.inputs[0].shape, iris.route.serverless_endpoint) == ("FP32", (-1, 4), "iris")
    assert iris.inputs[0].value_range is not None


def write(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def mutated(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    change(document)
    return document


def set_in(path: list[Any], value: Any) -> Any:
    def change(document: Any) -> None:
        target = document
        for key in path[:-1]:
            target = target[key]
        if value is KeyError:
            del target[path[-1]]
        else:
            target[path[-1]] = value

    return change


CASES = [
    ("missing_models", set_in(["models"], KeyError), "models: is required"),
    ("bad_datatype", set_in(["models", 0, "inputs", 0, "datatype"], "FP33"), "models[0].inputs[0].datatype: 'FP33' is not one of"),
    ("bad_dim", set_in(["models", 0, "inputs", 0, "shape"], [0, 4]), "models[0].inputs[0].shape[0]: must be a positive integer or -1"),
    ("unknown_field", set_in(["models", 0, "colour"], "red"), "models[0].colour: unknown field"),
    ("range_inverted", set_in(["models", 0, "inputs", 0, "range"], {"min": 5, "max": 1}), "models[0].inputs[0].range: min 5 is greater than max 1"),
    ("range_empty", set_in(["models", 0, "inputs", 0, "range"], {}), "models[0].inputs[0].range: needs min, max or both"),
    ("sync_unknown", set_in(["models", 0, "route", "sync"], "ec2"), "models[0].route.sync: 'ec2' is not one of serverless, lambda"),
    ("serverless_without_endpoint", set_in(["models", 0, "route"], {"sync": "serverless"}), "models[0].route.serverless_endpoint: is required when sync is 'serverless'"),
    ("no_route", set_in(["models", 0, "route"], {"sync": None}), "models[0].route: declares no route"),
    ("bad_endpoint_name", set_in(["models", 0, "route", "serverless_endpoint"], "iris_v1"), "models[0].route.serverless_endpoint: 'iris_v1' does not match"),
    ("body_over_route_limit", set_in(["models", 0, "limits", "max_body_bytes"], 5 * 1024 * 1024), "models[0].limits.max_body_bytes: 5242880 exceeds the route's limit of 4194304"),
    ("batch_rows_zero", set_in(["models", 0, "limits", "max_batch_rows"], 0), "models[0].limits.max_batch_rows: must be a positive integer"),
    ("duplicate_input", lambda d: d["models"][0]["inputs"].append(dict(d["models"][0]["inputs"][0])), "models[0].inputs[1].name: duplicate tensor name 'input'"),
    ("duplicate_model", lambda d: d["models"].insert(1, copy.deepcopy(d["models"][0])), "models[1].name: duplicate model name 'iris'"),
    ("resilience_unknown", set_in(["models", 0, "resilience"], {"retries": 3}), "models[0].resilience.retries: unknown field"),
    ("retry_too_many", set_in(["models", 0, "resilience"], {"retry": {"max_attempts": 11}}), "models[0].resilience.retry.max_attempts: 11 is above the most allowed, 10"),
    ("retry_zero", set_in(["models", 0, "resilience"], {"retry": {"base_delay_ms": 0}}), "models[0].resilience.retry.base_delay_ms: must be a positive integer"),
    ("breaker_rate", set_in(["models", 0, "resilience"], {"breaker": {"failure_rate": 1.5}}), "models[0].resilience.breaker.failure_rate: 1.5 must be a fraction in (0, 1]"),
    ("fallback_unknown", set_in(["models", 0, "resilience"], {"fallback": "cached"}), "models[0].resilience.fallback: 'cached' is not null, 'last_good' or"),
    ("fallback_static_empty", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": []}}}), "models[0].resilience.fallback.static.outputs: must list the OIP outputs"),
    ("fallback_static_unknown_output", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": [{"name": "class", "datatype": "INT64", "shape": [1], "data": [0]}]}}}), "models[0].resilience.fallback.static.outputs[0].name: 'class' is not an output of the model (label, probabilities)"),
    ("fallback_static_datatype", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": [{"name": "label", "datatype": "FP32", "shape": [1], "data": [0]}]}}}), "models[0].resilience.fallback.static.outputs[0].datatype: 'FP32' is not the model's INT64"),
    ("fallback_static_shape", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 4], "data": [0, 0, 0, 1]}]}}}), "models[0].resilience.fallback.static.outputs[0].shape: [1, 4] does not fit the model's [-1, 3]"),
    ("fallback_static_count", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [[0.5, 0.5]]}]}}}), "models[0].resilience.fallback.static.outputs[0].data: holds 2 elements; shape [1, 3] needs 3"),
    ("fallback_static_twice", set_in(["models", 0, "resilience"], {"fallback": {"static": {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}] * 2}}}), "models[0].resilience.fallback.static.outputs[1].name: output 'label' is listed twice"),
    ("fallback_static_model_name", set_in(["models", 0, "resilience"], {"fallback": {"static": {"model_name": "other", "outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}}}), "models[0].resilience.fallback.static.model_name: unknown field"),
    ("spill_without_async", lambda d: (d["models"][0]["route"].pop("async_endpoint"), d["models"][0].update(resilience={"spill_async": True})), "models[0].resilience.spill_async: needs route.async_endpoint to spill to"),
    ("spill_not_bool", set_in(["models", 0, "resilience"], {"spill_async": "yes"}), "models[0].resilience.spill_async: must be true or false"),
    ("batching_unknown", set_in(["models", 0, "batching"], {"max_delay_ms": 2}), "models[0].batching.max_delay_ms: unknown field (allowed: enabled, max_batch_size, max_queue_delay_ms)"),
    ("batching_size_zero", set_in(["models", 0, "batching"], {"max_batch_size": 0}), "models[0].batching.max_batch_size: must be a positive integer, got 0"),
    ("batching_size_huge", set_in(["models", 0, "batching"], {"max_batch_size": 5000}), "models[0].batching.max_batch_size: 5000 is above the most allowed, 4096"),
    ("batching_delay_negative", set_in(["models", 0, "batching"], {"max_queue_delay_ms": -1}), "models[0].batching.max_queue_delay_ms: -1 must be between 0 and 1000 ms"),
    ("batching_delay_text", set_in(["models", 0, "batching"], {"max_queue_delay_ms": "1"}), "models[0].batching.max_queue_delay_ms: must be a finite number, got '1'"),
    ("batching_enabled_text", set_in(["models", 0, "batching"], {"enabled": "on"}), "models[0].batching.enabled: must be true or false, got 'on'"),
    ("batching_fixed_batch_dim", lambda d: (d["models"][0]["inputs"][0].update(shape=[1, 4]), d["models"][0].update(batching={"enabled": True})), "models[0].batching: batching needs a free batch dim (-1 first) on every input and output, and this model has a fixed one"),
    ("batching_implied_fixed_dim", lambda d: (d["models"][0]["outputs"][0].update(shape=[1]), d["models"][0].update(batching={"max_batch_size": 8})), "models[0].batching: batching needs a free batch dim"),
    ("batching_without_endpoint", lambda d: d["models"][0].update(route={"sync": "lambda"}, batching={"enabled": False}), "models[0].batching: configures the SageMaker serving container, but the model has no endpoint (route.sync is 'lambda' and no async_endpoint)"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_load_invalid_config_names_file_and_field(tmp_path: Path, change: Any, message: str) -> None:
    path = write(tmp_path, mutated(change))
    with pytest.raises(ConfigError) as caught:
        load_models_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_load_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "models": [\n')
    with pytest.raises(ConfigError, match=rf"^{path}: line 3 column 1: invalid JSON"):
        load_models_config(path)


def test_load_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_models_config(tmp_path / "absent.json")


def load_changed(tmp_path: Path, change: Any) -> Any:
    return load_models_config(write(tmp_path, mutated(change))).models[0]


def test_batching_defaults_to_on_for_a_model_with_a_free_batch_dim(tmp_path: Path) -> None:
    iris = load_changed(tmp_path, lambda d: None)
    assert iris.batching == BatchingConfig(enabled=True, max_batch_size=32, max_queue_delay_ms=1.0)
    assert iris.batching.environment() == {
        "SERVING_BATCHING": "on",
        "SERVING_MAX_BATCH_SIZE": "32",
        "SERVING_MAX_QUEUE_DELAY_MS": "1",
    }


def test_batching_defaults_to_off_for_a_model_without_a_free_batch_dim(tmp_path: Path) -> None:
    fixed = load_changed(tmp_path, lambda d: d["models"][0]["inputs"][0].update(shape=[1, 4]))
    assert fixed.batching.enabled is False
    assert fixed.batching.environment()["SERVING_BATCHING"] == "off"


def test_batching_block_is_typed_and_reaches_the_container_environment(tmp_path: Path) -> None:
    block = {"max_batch_size": 64, "max_queue_delay_ms": 2.5}
    model = load_changed(tmp_path, set_in(["models", 0, "batching"], block))
    assert model.batching == BatchingConfig(enabled=True, max_batch_size=64, max_queue_delay_ms=2.5)
    assert model.batching.environment() == {
        "SERVING_BATCHING": "on",
        "SERVING_MAX_BATCH_SIZE": "64",
        "SERVING_MAX_QUEUE_DELAY_MS": "2.5",
    }


def test_batching_may_be_switched_off_for_a_model_without_a_free_batch_dim(tmp_path: Path) -> None:
    def change(document: Any) -> None:
        document["models"][0]["inputs"][0]["shape"] = [1, 4]
        document["models"][0]["batching"] = {"enabled": False}

    assert load_changed(tmp_path, change).batching.enabled is False


def test_signature_holds_only_what_the_container_reads() -> None:
    entry = VALID["models"][0]
    signature = serving_signature(entry)
    assert sorted(signature) == ["inputs", "name", "outputs", "platform", "version"]
    model = parse_model_signature(signature, "signature.json")
    configured = load_models_config().models[0]
    # The outputs' contracts are the router's check of the answers: the container's copy leaves them out.
    assert all(spec.contract is not None for spec in configured.outputs)
    assert (model.name, model.inputs, model.outputs) == (
        "iris",
        configured.inputs,
        tuple(dataclasses.replace(spec, contract=None) for spec in configured.outputs),
    )
    assert model.route.sync is None
    assert model.route.serverless_endpoint is None


@pytest.mark.parametrize("router_field", ["route", "limits", "resilience", "batching", "artifact"])
def test_signature_with_a_router_field_is_rejected_naming_it(router_field: str) -> None:
    signature = {**serving_signature(VALID["models"][0]), router_field: {}}
    with pytest.raises(ConfigError, match=rf"^signature.json: signature.{router_field}: unknown field"):
        parse_model_signature(signature, "signature.json")
