"""A model's versions and traffic weights: parsed into VersionConfig, every wrong field named."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.model_types import DEFAULT_SHADOW_TOLERANCE, RouteConfig
from functions.config.models import DEFAULT_CONFIG_PATH, parse_models_config

VALID: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
V2 = {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}}
V3_SHADOW = {
    "version": "3",
    "route": {"sync": "serverless", "serverless_endpoint": "iris-v3"},
    "artifact": "layers/models/iris/v3.onnx",
    "shadow": {"sample_rate": 0.25, "tolerance": {"probabilities": 0.05}},
}


def with_iris(**fields: Any) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    document["models"][0].update(copy.deepcopy(fields))
    return document


def test_versions_and_weights_parse_primary_first() -> None:
    iris = parse_models_config(with_iris(versions=[V2, V3_SHADOW], traffic={"1": 90, "2": 10})).by_name["iris"]
    assert [(v.version, v.weight, v.shadow is not None) for v in iris.versions] == [
        ("1", 90, False), ("2", 10, False), ("3", 0, True)
    ]  # fmt: skip
    assert iris.version_by_name["2"].route == RouteConfig("serverless", "iris-v2", None)
    assert iris.version_by_name["2"].artifact == iris.artifact  # defaults to the model's
    assert iris.version_by_name["3"].artifact == "layers/models/iris/v3.onnx"
    shadow = iris.version_by_name["3"].shadow
    assert shadow is not None
    assert shadow.sample_rate == 0.25
    assert (shadow.tolerance_of("probabilities"), shadow.tolerance_of("label")) == (0.05, DEFAULT_SHADOW_TOLERANCE)
    assert (iris.version, iris.route.serverless_endpoint) == ("1", "iris")  # the primary keeps its meaning


def test_no_versions_means_one_version_with_all_traffic() -> None:
    iris = parse_models_config(VALID).by_name["iris"]
    assert [(v.version, v.weight, v.route) for v in iris.versions] == [("1", 100, iris.route)]


def test_versions_without_traffic_leave_all_traffic_on_the_primary() -> None:
    iris = parse_models_config(with_iris(versions=[V2])).by_name["iris"]
    assert [v.weight for v in iris.versions] == [100, 0]


def test_replacing_the_route_keeps_the_primary_version_coherent() -> None:
    iris = parse_models_config(with_iris(versions=[V2], traffic={"1": 50, "2": 50})).by_name["iris"]
    moved = dataclasses.replace(iris, route=RouteConfig("lambda", None, None))
    assert moved.versions[0].route == RouteConfig("lambda", None, None)
    assert [v.weight for v in moved.versions] == [50, 50]


TRAFFIC_ERRORS = [
    ("unknown_version", {"versions": [V2], "traffic": {"1": 90, "7": 10}}, "models[0].traffic.7: is not a version"),
    ("shadow_weight", {"versions": [V2, V3_SHADOW], "traffic": {"1": 90, "3": 10}}, "models[0].traffic.3: is a shadow version"),
    ("not_integer", {"versions": [V2], "traffic": {"1": 89.5, "2": 10.5}}, "models[0].traffic.1: must be a whole percent"),
    ("bool_weight", {"versions": [V2], "traffic": {"1": True, "2": 99}}, "models[0].traffic.1: must be a whole percent"),
    ("negative", {"versions": [V2], "traffic": {"1": 110, "2": -10}}, "models[0].traffic.1: must be a whole percent"),
    ("sum", {"versions": [V2], "traffic": {"1": 90, "2": 20}}, "models[0].traffic: weights sum to 110, not 100"),
    ("empty", {"versions": [V2], "traffic": {}}, "models[0].traffic: must map versions"),
    ("not_object", {"versions": [V2], "traffic": [90, 10]}, "models[0].traffic: must map versions"),
]  # fmt: skip

VERSION_ERRORS = [
    ("not_list", {"versions": {"2": V2}}, "models[0].versions: must be a list"),
    ("primary_repeated", {"versions": [{**V2, "version": "1"}]}, "models[0].versions[0].version: duplicate version '1'"),
    ("duplicate", {"versions": [V2, {**V2, "route": {"sync": "lambda"}}]}, "models[0].versions[1].version: duplicate version '2'"),
    ("bad_name", {"versions": [{**V2, "version": "a/b"}]}, "models[0].versions[0].version: 'a/b' does not match"),
    ("no_route", {"versions": [{"version": "2"}]}, "models[0].versions[0].route: is required"),
    ("bad_route", {"versions": [{**V2, "route": {"sync": "serverless"}}]}, "models[0].versions[0].route.serverless_endpoint: is required"),
    ("unknown_field", {"versions": [{**V2, "weight": 10}]}, "models[0].versions[0].weight: unknown field"),
    ("shared_endpoint", {"versions": [{**V2, "route": {"sync": "serverless", "serverless_endpoint": "iris"}}]}, "models[0].versions[0].route.serverless_endpoint: endpoint 'iris' is already iris version 1's"),
    ("shared_async", {"versions": [{**V2, "route": {"sync": None, "async_endpoint": "iris-async"}}]}, "models[0].versions[0].route.async_endpoint: endpoint 'iris-async' is already iris version 1's"),
    ("sample_rate_zero", {"versions": [{**V3_SHADOW, "shadow": {"sample_rate": 0}}]}, "models[0].versions[0].shadow.sample_rate: 0 must be a fraction in (0, 1]"),
    ("sample_rate_missing", {"versions": [{**V3_SHADOW, "shadow": {}}]}, "models[0].versions[0].shadow.sample_rate: is required"),
    ("tolerance_int_output", {"versions": [{**V3_SHADOW, "shadow": {"sample_rate": 1, "tolerance": {"label": 1}}}]}, "models[0].versions[0].shadow.tolerance.label: unknown field"),
    ("tolerance_negative", {"versions": [{**V3_SHADOW, "shadow": {"sample_rate": 1, "tolerance": {"probabilities": -1}}}]}, "models[0].versions[0].shadow.tolerance.probabilities: -1 must be a non-negative"),
    ("tolerance_not_number", {"versions": [{**V3_SHADOW, "shadow": {"sample_rate": 1, "tolerance": {"probabilities": "x"}}}]}, "models[0].versions[0].shadow.tolerance.probabilities: must be a finite number"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fields", "message"),
    [c[1:] for c in TRAFFIC_ERRORS + VERSION_ERRORS],
    ids=[c[0] for c in TRAFFIC_ERRORS + VERSION_ERRORS],
)
def test_invalid_versions_name_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as failure:
        parse_models_config(with_iris(**fields), "models.json")
    assert f"models.json: {message}" in str(failure.value)


def test_a_version_route_must_carry_the_models_body_limit() -> None:
    document = with_iris(versions=[V2])
    document["models"][1]["versions"] = [{"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "d2"}}]
    document["models"][1]["limits"]["max_body_bytes"] = 5_000_000  # digits is in-Lambda: 6 MB allowed
    with pytest.raises(ConfigError, match=r"models\[1\]\.versions\[0\]\.route: carries bodies up to 4194304 bytes"):
        parse_models_config(document)


def test_endpoints_are_unique_across_models() -> None:
    document = with_iris()
    document["models"][1]["versions"] = [
        {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris"}}
    ]
    with pytest.raises(ConfigError, match=r"models\[1\]\.versions\[0\]\.route\.serverless_endpoint: endpoint 'iris'"):
        parse_models_config(document)
