"""Cost per prediction as synthesized: the router's prices and endpoint sizes in both stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.config.models import load_models_config, parse_models_config
from functions.config.prices import ServerlessSize, region_prices, serverless_size
from functions.config.router_settings import RouterSettings
from infra.config.costing import cost_environment
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from tests.helpers.synth import Synthesized

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())


def router_environment(synth: Synthesized) -> dict[str, Any]:
    [function] = synth.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def test_the_router_gets_its_region_prices_and_each_serverless_endpoint_size(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        stage = load_stage_config(synth.stage)
        variables = router_environment(synth)
        assert {name: variables[name] for name in cost_environment(stage)} == cost_environment(stage)
        settings = RouterSettings.from_env(variables)
        assert settings.prices == region_prices(stage.region)
        for name, endpoint in stage.serverless_endpoints.items():
            size = serverless_size(settings.serverless_sizes, f"{synth.stage}-{name}")
            assert size == ServerlessSize(endpoint.memory_mb, endpoint.provisioned_concurrency)
        assert stage.serverless_endpoints, "the default config has a serverless model"


def with_serverless_model(name: str) -> Any:
    """The default model config plus ``name``, a copy of its serverless model on an endpoint of its own."""
    raw = json.loads(Path(MODELS.source).read_text())
    [template] = [model for model in raw["models"] if model["route"].get("sync") == "serverless"]
    route = {**template["route"], "serverless_endpoint": name}
    route.pop("async_endpoint", None)
    raw["models"].append({**template, "name": name, "route": route})
    return parse_models_config(raw, "more.json")


def test_a_model_added_with_default_serverless_settings_leaves_the_router_environment_unchanged() -> None:
    for stage in ("dev", "prod"):
        before = parse_stage_config(DOCUMENT, stage, MODELS, "stages.json")
        after = parse_stage_config(DOCUMENT, stage, with_serverless_model("wine"), "stages.json")
        assert "wine" in after.serverless_endpoints
        assert cost_environment(after) == cost_environment(before)
        sizes = RouterSettings.from_env(cost_environment(after)).serverless_sizes
        default = after.serverless_endpoint_defaults
        assert serverless_size(sizes, after.endpoint_name("wine")) == ServerlessSize(
            default.memory_mb, default.provisioned_concurrency
        )


def test_an_endpoint_that_differs_from_the_defaults_is_named_with_its_own_size() -> None:
    stage = parse_stage_config(DOCUMENT, "prod", MODELS, "stages.json")
    sizes = json.loads(cost_environment(stage)["SERVERLESS_ENDPOINT_SIZES"])
    assert sizes == {
        "*": {"memory_mb": 2048, "provisioned_concurrency": 0},
        "prod-iris": {"memory_mb": 2048, "provisioned_concurrency": 2},
    }
