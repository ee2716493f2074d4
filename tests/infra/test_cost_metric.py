"""Cost per prediction as synthesized: the router's prices and endpoint sizes in both stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.config.async_costing import AsyncCostSettings
from functions.config.models import load_models_config, parse_models_config
from functions.config.prices import ServerlessSize, region_prices, serverless_size
from functions.config.router_settings import RouterSettings
from infra.config.costing import cost_environment, sweeper_cost_environment
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


def test_the_sweeper_gets_the_prices_instance_types_and_interval_and_may_describe_the_stage_endpoints(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        stage = load_stage_config(synth.stage)
        [(logical_id, function)] = synth.platform.resources(
            "AWS::Lambda::Function", {"Handler": "functions.handlers.sweeper.handler.lambda_handler"}
        ).items()
        settings = AsyncCostSettings.from_env(function["Properties"]["Environment"]["Variables"])
        assert settings is not None
        assert settings.prices == stage.prices
        assert settings.interval_s == stage.async_storage.sweep_interval_minutes * 60
        for name, endpoint in stage.async_endpoints.items():
            assert settings.instance_type(stage.endpoint_name(name)) == endpoint.instance_type
        statements = [
            statement
            for policy in synth.platform.resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Action"] == "sagemaker:DescribeEndpoint"
        ]
        assert len(statements) == 1
        assert f":endpoint/{stage.endpoint_name_prefix}*" in json.dumps(statements[0]["Resource"])
        assert logical_id.startswith("AsyncPipelineSweeper")


def test_a_model_added_with_the_default_async_instance_type_leaves_the_sweeper_environment_unchanged() -> None:
    for stage in ("dev", "prod"):
        before = parse_stage_config(DOCUMENT, stage, MODELS, "stages.json")
        after = parse_stage_config(DOCUMENT, stage, with_async_model("wine"), "stages.json")
        assert "wine-async" in after.async_endpoints
        assert sweeper_cost_environment(after) == sweeper_cost_environment(before)
        settings = AsyncCostSettings.from_env(sweeper_cost_environment(after))
        assert settings is not None
        assert settings.instance_type(after.endpoint_name("wine-async")) == after.async_default_instance_type


def with_async_model(name: str) -> Any:
    raw = json.loads(Path(MODELS.source).read_text())
    [template] = [model for model in raw["models"] if model["route"].get("async_endpoint")]
    route = {"async_endpoint": f"{name}-async"}
    raw["models"].append({**template, "name": name, "route": route})
    return parse_models_config(raw, "more.json")
