"""ModelDashboard: ``InferenceRouter-<stage>-<model>``, one model's router metrics and SageMaker endpoints.

It lives in the model's stack, so it is created, changed and removed with the model and no other stack
changes; the widgets come from :mod:`infra.constructs.dashboards`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import cdk_monitoring_constructs as monitoring
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from functions.config.telemetry import (
    ENDPOINT_LATENCY_METRIC,
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    SERVICE_DIMENSION,
    SHADOW_AGREEMENTS_METRIC,
    SHADOW_ERRORS_METRIC,
    SHADOW_LATENCY_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_SERVICE,
    SHADOW_SKIPPED_METRIC,
    VERSION_DIMENSION,
)
from infra.constructs.dashboards import (
    PERIOD,
    async_groups,
    cost_group,
    dashboard_name,
    facade,
    group,
    metric,
    model_router_groups,
    router_metric,
    serverless_groups,
)

# What a shadow's answers are compared with: the router's own latency and its time in the serverless call.
SHADOW_LATENCY_STATISTIC: Final[str] = "p99"


class ModelDashboard(Construct):
    """Props (keyword-only):
    stage: the stage name; model: the model name (both name the dashboard).
    serverless_endpoints: each serverless endpoint's name (one per version that has one) and whether it has
        provisioned concurrency (its widgets then).
    async_endpoints: the async endpoints' names, one per version that has one.
    shadow_version: the model's shadow version (its agreement, errors and latency), or None.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        model: str,
        serverless_endpoints: Sequence[tuple[str, bool]],
        async_endpoints: Sequence[str],
        shadow_version: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        name = dashboard_name(stage, model)
        monitoring = facade(self, name)
        monitoring.add_large_header(f"Model {model} ({stage})")
        endpoints = [*(endpoint for endpoint, _ in serverless_endpoints), *async_endpoints]
        routes = [
            route for route, present in (("serverless", serverless_endpoints), ("async", async_endpoints)) if present
        ]
        monitoring.monitor_custom(
            alarm_friendly_name=f"{model}-router",
            human_readable_name=f"Router: requests for {model}",
            metric_groups=model_router_groups(model, routes, endpoints),
        )
        monitoring.monitor_custom(
            alarm_friendly_name=f"{model}-cost",
            human_readable_name=f"Cost of {model}: its requests and its async instance time",
            metric_groups=[cost_group(model)],
        )
        for index, (serverless_endpoint, serverless_provisioned) in enumerate(serverless_endpoints):
            monitoring.monitor_custom(
                alarm_friendly_name=f"{model}-serverless{_nth(index)}",
                human_readable_name=f"Serverless endpoint {serverless_endpoint}",
                metric_groups=serverless_groups(serverless_endpoint, provisioned=serverless_provisioned),
            )
        for index, async_endpoint in enumerate(async_endpoints):
            monitoring.monitor_custom(
                alarm_friendly_name=f"{model}-async{_nth(index)}",
                human_readable_name=f"Async endpoint {async_endpoint}",
                metric_groups=async_groups(async_endpoint),
            )
        if shadow_version is not None:
            monitoring.monitor_custom(
                alarm_friendly_name=f"{model}-shadow",
                human_readable_name=f"Shadow version {shadow_version} (counted, never alarmed)",
                metric_groups=shadow_groups(model, shadow_version),
            )


def shadow_metric(name: str, model: str, version: str, statistic: str, label: str) -> cloudwatch.Metric:
    """A shadow worker metric of one model's shadow version (its EMF dimension set: service, model, version)."""
    dimensions = {SERVICE_DIMENSION: SHADOW_SERVICE, MODEL_DIMENSION: model, VERSION_DIMENSION: version}
    return metric(METRICS_NAMESPACE, name, dimensions, statistic, label)


def shadow_groups(model: str, version: str) -> list[monitoring.CustomMetricGroup]:
    """Agreement rate (of the answers the shadow gave), errors and skipped copies, and the shadow's p99 next to
    the primary's."""
    agreement = cloudwatch.MathExpression(
        expression="IF(requests - errors > 0, 100 * agreements / (requests - errors), 0)",
        using_metrics={
            "agreements": shadow_metric(SHADOW_AGREEMENTS_METRIC, model, version, "Sum", "agreements"),
            "requests": shadow_metric(SHADOW_REQUESTS_METRIC, model, version, "Sum", "requests"),
            "errors": shadow_metric(SHADOW_ERRORS_METRIC, model, version, "Sum", "errors"),
        },
        label="agreement %",
        period=PERIOD,
    )
    stat = SHADOW_LATENCY_STATISTIC
    return [
        group("Shadow agreement with the primary", [agreement], unit="%"),
        group(
            "Shadow requests, errors and skipped copies",
            [
                shadow_metric(SHADOW_REQUESTS_METRIC, model, version, "Sum", "shadowed"),
                shadow_metric(SHADOW_ERRORS_METRIC, model, version, "Sum", "shadow errors"),
                shadow_metric(SHADOW_SKIPPED_METRIC, model, version, "Sum", "skipped (too large)"),
            ],
            unit="count",
        ),
        group(
            f"Shadow {stat} vs primary {stat}",
            [
                shadow_metric(SHADOW_LATENCY_METRIC, model, version, stat, f"shadow endpoint {stat}"),
                router_metric(ENDPOINT_LATENCY_METRIC, stat, f"primary call {stat}", model=model, route="serverless"),
                router_metric(LATENCY_METRIC, stat, f"primary router total {stat}", model=model),
            ],
            unit="ms",
        ),
    ]


def _nth(index: int) -> str:
    """The suffix that keeps a second endpoint's section apart; the first keeps the name it has always had."""
    return "" if index == 0 else f"-{index + 1}"
