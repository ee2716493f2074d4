"""The stage's prices: the public table's row for its region, ``defaults.prices`` and ``stages.<s>.prices``
(already deep-merged by the loader) over it, checked to price every async instance type the stage runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from functions.config.async_costing import instance_types_to_json
from functions.config.prices import (
    DEFAULT_SIZE_KEY,
    INSTANCE_KEY,
    SIZES_PREFIX_VARIABLE,
    PriceTableError,
    RegionPrices,
    ServerlessSize,
    default_size_to_json,
    region_prices,
    serverless_size_parameter_prefix,
    serverless_size_to_json,
)
from functions.config.telemetry import (
    ASYNC_INSTANCE_TYPES_VARIABLE,
    PRICES_VARIABLE,
    SERVERLESS_SIZES_VARIABLE,
    SWEEP_INTERVAL_VARIABLE,
)
from infra.config.types import AsyncEndpointConfig, StageConfig, StageConfigError


def read_prices(
    source: str, stage: str, region: str, raw: Any, async_endpoints: Mapping[str, AsyncEndpointConfig]
) -> RegionPrices:
    field = f"stages.{stage}.prices"
    try:
        prices = region_prices(region, raw, field=field)
    except PriceTableError as error:
        raise StageConfigError(f"{source}: {error}") from None
    for name, endpoint in sorted(async_endpoints.items()):
        if endpoint.instance_type not in prices.sagemaker_instance_hour:
            raise StageConfigError(
                f"{source}: {field}.{INSTANCE_KEY}: no price for {endpoint.instance_type!r}, the instance type of "
                f"async_endpoints.{name}; add its hourly price (USD) there"
            )
    return prices


def cost_environment(stage: StageConfig) -> dict[str, str]:
    """The router's costing variables: its region's prices, the stage's default serverless size and the SSM path
    each endpoint's own size is under (:func:`serverless_size_parameters`). None of them names an endpoint, so
    adding or resizing a model changes nothing in the platform stack."""
    defaults = stage.serverless_endpoint_defaults
    return {
        PRICES_VARIABLE: stage.prices.to_json(),
        SERVERLESS_SIZES_VARIABLE: default_size_to_json(
            ServerlessSize(defaults.memory_mb, defaults.provisioned_concurrency)
        ),
        SIZES_PREFIX_VARIABLE: serverless_size_parameter_prefix(stage.name),
    }


def serverless_size_parameter(stage: StageConfig, endpoint: str) -> tuple[str, str]:
    """The SSM parameter (name, value) holding the size of the serverless endpoint ``endpoint`` (its name in the
    stage config), which the model stack deploying it writes."""
    sizing = stage.serverless_endpoints[endpoint]
    return (
        f"{serverless_size_parameter_prefix(stage.name)}{stage.endpoint_name(endpoint)}",
        serverless_size_to_json(ServerlessSize(sizing.memory_mb, sizing.provisioned_concurrency)),
    )


def sweeper_cost_environment(stage: StageConfig) -> dict[str, str]:
    """The sweeper's costing variables: the region's prices, each async endpoint's instance type (the stage
    default under ``"*"``, by physical name only the endpoints that differ) and the sweep interval it charges."""
    default = stage.async_default_instance_type
    types = {DEFAULT_SIZE_KEY: default} | {
        stage.endpoint_name(name): endpoint.instance_type
        for name, endpoint in stage.async_endpoints.items()
        if endpoint.instance_type != default
    }
    return {
        PRICES_VARIABLE: stage.prices.to_json(),
        ASYNC_INSTANCE_TYPES_VARIABLE: instance_types_to_json(types),
        SWEEP_INTERVAL_VARIABLE: str(stage.async_storage.sweep_interval_minutes * 60),
    }
