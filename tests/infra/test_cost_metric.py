"""Cost per prediction as synthesized: the router's prices and endpoint sizes in both stages."""

from __future__ import annotations

from typing import Any

from functions.config.prices import ServerlessSize, region_prices
from functions.config.router_settings import RouterSettings
from infra.config.loader import load_stage_config
from tests.helpers.synth import Synthesized


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
        settings = RouterSettings.from_env(router_environment(synth))
        assert settings.prices == region_prices(stage.region)
        assert settings.serverless_sizes == {
            f"{synth.stage}-{name}": ServerlessSize(endpoint.memory_mb, endpoint.provisioned_concurrency)
            for name, endpoint in stage.serverless_endpoints.items()
        }
        assert settings.serverless_sizes, "the default config has a serverless model"
