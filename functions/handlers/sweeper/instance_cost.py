"""The async endpoints' instance cost, charged by the sweeper each run (it runs every sweep interval).

For each async endpoint the model config routes to, DescribeEndpoint's running instance count times the
interval at the instance type's hourly price, by model, as ``CostUsd`` on route ``async`` (the router's
per-request CostUsd covers the rest; functions/config/telemetry.py). One EMF document per model, with a
``service``-only rollup the stage's cost alarm reads. An endpoint that does not exist (not deployed yet, or
deleted) costs nothing; a failed read is logged and skipped, the next run reads it again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from functions.config.prices import PriceTableError
from functions.config.telemetry import (
    COST_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    ROUTE_DIMENSION,
    SERVICE_DIMENSION,
    SWEEPER_SERVICE,
)
from functions.domain.async_cost import CapacityUnavailableError, async_instance_costs

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from functions.config.async_costing import AsyncCostSettings
    from functions.config.model_types import ModelsConfig

ASYNC_ROUTE = "async"


class CapacityPort(Protocol):
    def instances(self, endpoint: str) -> int | None: ...


class InstanceCostReport:
    """Call it once per sweep: it emits each model's instance cost and returns it (USD by model)."""

    def __init__(
        self,
        config: ModelsConfig,
        endpoint_name_prefix: str,
        settings: AsyncCostSettings,
        capacity: CapacityPort,
        logger: Logger,
        *,
        emit: Callable[[str], None] = print,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.endpoints_by_model = {
            model.name: f"{endpoint_name_prefix}{model.route.async_endpoint}"
            for model in config.models
            if model.route.async_endpoint is not None
        }
        self.settings = settings
        self.capacity = capacity
        self.logger = logger
        self.emit = emit
        self.wall_clock = wall_clock

    def __call__(self) -> dict[str, float]:
        instances: dict[str, int] = {}
        types: dict[str, str] = {}
        for endpoint in sorted(set(self.endpoints_by_model.values())):
            instance_type = self.settings.instance_type(endpoint)
            if instance_type is None:
                self.logger.warning("no instance type for the async endpoint: not costed", extra={"endpoint": endpoint})
                continue
            try:
                count = self.capacity.instances(endpoint)
            except CapacityUnavailableError as error:
                self.logger.warning("instance count unavailable", extra={"endpoint": endpoint, "error": str(error)})
                continue
            if count is not None:
                instances[endpoint], types[endpoint] = count, instance_type
        try:
            costs = async_instance_costs(
                self.endpoints_by_model, instances, types, self.settings.prices, self.settings.interval_s
            )
        except PriceTableError as error:
            self.logger.error("async instance not priced: no cost emitted", extra={"error": str(error)})
            return {}
        if not is_metrics_disabled():
            for model, cost in costs.items():
                self.emit(json.dumps(self._document(model, cost), separators=(",", ":")))
        return costs

    def _document(self, model: str, cost: float) -> dict[str, Any]:
        dimensions = [
            [SERVICE_DIMENSION],
            [SERVICE_DIMENSION, MODEL_DIMENSION],
            [SERVICE_DIMENSION, MODEL_DIMENSION, ROUTE_DIMENSION],
        ]
        directive = {
            "Namespace": METRICS_NAMESPACE,
            "Dimensions": dimensions,
            "Metrics": [{"Name": COST_METRIC, "Unit": "None"}],
        }
        return {
            "_aws": {"Timestamp": int(self.wall_clock() * 1000), "CloudWatchMetrics": [directive]},
            SERVICE_DIMENSION: SWEEPER_SERVICE,
            MODEL_DIMENSION: model,
            ROUTE_DIMENSION: ASYNC_ROUTE,
            COST_METRIC: cost,
        }
