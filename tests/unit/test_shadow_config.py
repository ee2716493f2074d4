"""A shadow version must have a serverless route: the shadow worker replays requests with InvokeEndpoint."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.models import DEFAULT_CONFIG_PATH, parse_models_config

VALID: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
SHADOW = {"sample_rate": 0.5}


def iris_with_versions(*versions: dict[str, Any]) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["versions"] = list(versions)
    return document


@pytest.mark.parametrize(
    ("route", "sync"),
    [
        ({"sync": "lambda"}, "'lambda'"),
        ({"sync": None, "async_endpoint": "iris-v3-async"}, "None"),
    ],
    ids=["in_lambda", "async_only"],
)
def test_a_shadow_on_a_route_without_a_serverless_endpoint_is_refused(route: dict[str, Any], sync: str) -> None:
    document = iris_with_versions({"version": "3", "route": route, "shadow": SHADOW})
    with pytest.raises(ConfigError) as failure:
        parse_models_config(document, "models.json")
    [index] = [i for i, model in enumerate(document["models"]) if model["name"] == "iris"]
    assert f"models.json: models[{index}].versions[0].shadow: needs a serverless route (route.sync is {sync})" in str(
        failure.value
    )


def test_a_serverless_shadow_is_accepted() -> None:
    route = {"sync": "serverless", "serverless_endpoint": "iris-v3"}
    config = parse_models_config(iris_with_versions({"version": "3", "route": route, "shadow": SHADOW}), "m.json")
    iris = config.model("iris")
    assert iris is not None
    assert [entry.version for entry in iris.shadows] == ["3"]
