"""Cost per 1,000 predictions as CloudWatch metric math, for the dashboards and the stage's cost ticket.

The router emits each infer request's ``CostUsd`` (API, its own Lambda time, its serverless calls) and the
sweeper the async endpoints' instance time per run (functions/config/telemetry.py), both by (service, model)
and by service alone; the router counts ``Requests`` the same way. Cost per 1,000 predictions over a period is
``1000 * (router cost + sweeper cost) / requests``. FILL(..., 0): a period without async instance time (no
async endpoint, none running, or no sweep in it) or a router without prices adds nothing, instead of dropping
the point; a period without requests has no point (nothing was predicted).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from functions.config.telemetry import (
    COST_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTER_SERVICE,
    SERVICE_DIMENSION,
    SWEEPER_SERVICE,
)

COST_PER_1000_EXPRESSION: Final[str] = "1000 * (FILL(router, 0) + FILL(sweeper, 0)) / requests"
COST_EXPRESSION: Final[str] = "FILL(router, 0) + FILL(sweeper, 0)"
# The sweeper runs every few minutes and an hour holds every run's instance time: per-minute ratios would
# swing between runs, so the widgets read hourly points (the alarm's period comes from the stage config).
COST_WIDGET_PERIOD: Final[Duration] = Duration.hours(1)
COST_DAY: Final[Duration] = Duration.days(1)


def _sum(name: str, service: str, model: str | None, period: Duration) -> cloudwatch.Metric:
    dimensions = {SERVICE_DIMENSION: service, **({MODEL_DIMENSION: model} if model is not None else {})}
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE, metric_name=name, dimensions_map=dimensions, statistic="Sum", period=period
    )


def _costs(model: str | None, period: Duration) -> dict[str, cloudwatch.IMetric]:
    return {
        "router": _sum(COST_METRIC, ROUTER_SERVICE, model, period),
        "sweeper": _sum(COST_METRIC, SWEEPER_SERVICE, model, period),
    }


def cost_per_1000_predictions(
    model: str | None, *, period: Duration = COST_WIDGET_PERIOD, label: str = "USD per 1,000 predictions"
) -> cloudwatch.MathExpression:
    """One model's (``model``) or the stage's (None: the service-only rollups) cost per 1,000 predictions."""
    return cloudwatch.MathExpression(
        expression=COST_PER_1000_EXPRESSION,
        using_metrics={**_costs(model, period), "requests": _sum(REQUESTS_METRIC, ROUTER_SERVICE, model, period)},
        period=period,
        label=label,
    )


def stage_cost(*, period: Duration = COST_DAY, label: str = "USD per day") -> cloudwatch.MathExpression:
    """What the stage's requests and async instances cost, summed over ``period``."""
    return cloudwatch.MathExpression(
        expression=COST_EXPRESSION, using_metrics=_costs(None, period), period=period, label=label
    )
