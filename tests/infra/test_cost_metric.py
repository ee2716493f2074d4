"""Cost per prediction as synthesized: the router's prices and endpoint sizes in both stages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Match

from functions.config.async_costing import AsyncCostSettings
from functions.config.models import load_models_config, parse_models_config
from functions.config.prices import ServerlessSize, region_prices, serverless_size_parameter_prefix
from functions.config.router_settings import RouterSettings
from infra.config.costing import cost_environment, serverless_size_parameter, sweeper_cost_environment
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from infra.constructs.platform_parameters import PARAMETER_ROOT
from tests.helpers.synth import Synthesized

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())


def router_environment(synth: Synthesized) -> dict[str, Any]:
    [function] = synth.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    variables: dict[str, Any] = function["Properties"]["Environment"]["Variables"]
    return variables


def test_the_router_gets_its_region_prices_the_default_size_and_where_each_endpoint_size_is(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        stage = load_stage_config(synth.stage)
        variables = router_environment(synth)
        assert {name: variables[name] for name in cost_environment(stage)} == cost_environment(stage)
        settings = RouterSettings.from_env(variables)
        assert settings.prices == region_prices(stage.region)
        defaults = stage.serverless_endpoint_defaults
        assert settings.serverless_default_size == ServerlessSize(defaults.memory_mb, defaults.provisioned_concurrency)
        prefix = f"/inference-router/{synth.stage}/serverless-sizes/"
        assert settings.serverless_size_prefix == serverless_size_parameter_prefix(synth.stage) == prefix
        assert prefix.startswith(f"{PARAMETER_ROOT}/{synth.stage}/")


def test_each_model_stack_writes_its_serverless_endpoint_sizes(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        stage = load_stage_config(synth.stage)
        assert stage.serverless_endpoints, "the default config has a serverless model"
        assert not synth.platform.resources("AWS::SSM::Parameter", {"Name": Match.string_like_regexp("sizes")})
        for model in MODELS.models:
            endpoint = model.route.serverless_endpoint
            if endpoint is None or model.name not in synth.models:
                continue
            sizing = stage.serverless_endpoints[endpoint]
            [parameter] = (
                synth.models[model.name]
                .resources("AWS::SSM::Parameter", {"Name": Match.string_like_regexp("serverless-sizes")})
                .values()
            )
            assert parameter["Properties"]["Name"] == f"/inference-router/{synth.stage}/serverless-sizes/" + (
                f"{synth.stage}-{endpoint}"
            )
            assert parameter["Properties"]["Type"] == "String"
            assert json.loads(parameter["Properties"]["Value"]) == {
                "memory_mb": sizing.memory_mb,
                "provisioned_concurrency": sizing.provisioned_concurrency,
            }
    # prod's iris has provisioned concurrency 2, dev's none: each stage writes its own value.
    [prod_iris] = (
        prod.models["iris"]
        .resources("AWS::SSM::Parameter", {"Name": "/inference-router/prod/serverless-sizes/prod-iris"})
        .values()
    )
    assert json.loads(prod_iris["Properties"]["Value"])["provisioned_concurrency"] == 2


def test_the_router_may_read_only_its_stage_endpoint_sizes(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        statements = [
            statement
            for policy in synth.platform.resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if "ssm" in json.dumps(statement["Action"])
        ]
        assert statements == [
            {
                "Action": "ssm:GetParameter",
                "Effect": "Allow",
                "Resource": {
                    "Fn::Join": [
                        "",
                        [
                            f"arn:aws:ssm:{load_stage_config(synth.stage).region}:",
                            {"Ref": "AWS::AccountId"},
                            f":parameter/inference-router/{synth.stage}/serverless-sizes/*",
                        ],
                    ]
                },
            }
        ]
        [router_role] = [
            logical_id
            for logical_id, policy in synth.platform.resources("AWS::IAM::Policy").items()
            if statements[0] in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert router_role.startswith("Router")


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
        name, value = serverless_size_parameter(after, "wine")
        assert name == f"/inference-router/{stage}/serverless-sizes/{after.endpoint_name('wine')}"
        default = after.serverless_endpoint_defaults
        assert json.loads(value) == {
            "memory_mb": default.memory_mb,
            "provisioned_concurrency": default.provisioned_concurrency,
        }


def test_an_endpoint_that_differs_from_the_defaults_has_its_own_size_in_its_parameter_only() -> None:
    stage = parse_stage_config(DOCUMENT, "prod", MODELS, "stages.json")
    sizes = json.loads(cost_environment(stage)["SERVERLESS_ENDPOINT_SIZES"])
    assert sizes == {"*": {"memory_mb": 2048, "provisioned_concurrency": 0}}
    assert serverless_size_parameter(stage, "iris") == (
        "/inference-router/prod/serverless-sizes/prod-iris",
        '{"memory_mb":2048,"provisioned_concurrency":2}',
    )


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
