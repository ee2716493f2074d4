"""Sweeper Lambda entry point (scheduled): settles async jobs past their deadline that no notification
settled, and charges the async endpoints' instance time. Built once at cold start from the environment; the
wiring is functions/handlers/sweeper/app.py."""

from __future__ import annotations

import os
from collections.abc import Callable

from aws_lambda_powertools import Logger

from functions.adapters.async_service import async_service_from_env
from functions.adapters.endpoint_capacity import SageMakerEndpointCapacity
from functions.config.async_costing import AsyncCostSettings
from functions.config.models import load_models_config
from functions.handlers.sweeper.app import create_handler
from functions.handlers.sweeper.instance_cost import InstanceCostReport


def instance_cost_from_env() -> Callable[[Logger], InstanceCostReport] | None:
    """The instance cost report when the CDK gave the sweeper its prices; None otherwise (no CostUsd)."""
    settings = AsyncCostSettings.from_env()
    if settings is None:
        return None
    costed = settings
    return lambda logger: InstanceCostReport(
        load_models_config(os.environ.get("MODELS_CONFIG_PATH") or None),
        os.environ.get("ENDPOINT_NAME_PREFIX", ""),
        costed,
        SageMakerEndpointCapacity(),
        logger,
    )


lambda_handler = create_handler(async_service_from_env("sweeper"), instance_cost=instance_cost_from_env())
