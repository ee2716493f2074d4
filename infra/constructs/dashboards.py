"""The stage's dashboards, built with cdk-monitoring-constructs from the model and stage config.

Two kinds, so that none grows with the fleet: ``InferenceRouter-<stage>`` in the platform stack (router, API,
async pipeline, every model side by side through SEARCH expressions, so adding a model changes nothing in it)
and ``InferenceRouter-<stage>-<model>`` in each model's stack (that model's router metrics and its SageMaker
endpoints). A dashboard holds at most 500 widgets (CloudWatch quotas), which one dashboard of hundreds of
models' endpoint widgets would pass. The facade lays the widgets out and names the dashboard; the router's
Lambda, the API and the dead-letter queue use its stock monitors, the rest are custom groups because no stock
monitor knows the router's metrics, provisioned concurrency or SageMaker's serverless and async metrics.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

import cdk_monitoring_constructs as monitoring
from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from functions.config.telemetry import (
    CLIENT_ERRORS_METRIC,
    DEGRADED_REQUESTS_METRIC,
    ENDPOINT_LATENCY_METRIC,
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTE_DIMENSION,
    ROUTER_SERVICE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SLOW_REQUESTS_METRIC,
)
from infra.constructs.async_scaling import SAGEMAKER_NAMESPACE
from infra.constructs.cost_metrics import cost_per_1000_predictions
from infra.constructs.model_endpoint import VARIANT_NAME

# Router metrics are emitted per request and SageMaker's per minute: one-minute points show a burst as it was.
PERIOD: Final[Duration] = Duration.minutes(1)
LATENCY_PERCENTILES: Final[tuple[str, ...]] = ("p50", "p95", "p99")
# The dimension sets Powertools writes (it adds "service" to every metric of a function whose
# POWERTOOLS_SERVICE_NAME is set); a SEARCH schema must name a metric's dimensions exactly.
DEGRADED_ANSWERS_DIMENSIONS: Final[tuple[str, ...]] = ("cause", MODEL_DIMENSION, "reason", SERVICE_DIMENSION)
BREAKER_DIMENSIONS: Final[tuple[str, ...]] = ("endpoint", SERVICE_DIMENSION, "state")


def dashboard_name(stage: str, model: str | None = None) -> str:
    """``InferenceRouter-<stage>`` or ``InferenceRouter-<stage>-<model>`` (a dashboard name allows A-Z, a-z,
    0-9, '-' and '_', which every stage and model name is made of; a model's '.' becomes '_')."""
    name = f"InferenceRouter-{stage}"
    return name if model is None else f"{name}-{model.replace('.', '_')}"


def facade(scope: Construct, name: str) -> monitoring.MonitoringFacade:
    """A facade that builds one dashboard named ``name`` (no summary or alarm dashboard: CloudWatch bills each)."""
    return monitoring.MonitoringFacade(
        scope,
        "Monitoring",
        metric_factory_defaults=monitoring.MetricFactoryDefaults(period=PERIOD),
        dashboard_factory=monitoring.DefaultDashboardFactory(
            scope, "Dashboards", dashboard_name_prefix=name, detail_dashboard_range=Duration.hours(8)
        ),
    )


def metric(namespace: str, name: str, dimensions: Mapping[str, str], statistic: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=namespace,
        metric_name=name,
        dimensions_map=dict(dimensions),
        statistic=statistic,
        period=PERIOD,
        label=label,
    )


def router_metric(
    name: str, statistic: str, label: str, *, model: str | None = None, route: str | None = None
) -> cloudwatch.Metric:
    """A metric of the router's service (Requests, Latency, ColdStarts...) for one model (and route), or stage-wide."""
    dimensions = {SERVICE_DIMENSION: ROUTER_SERVICE}
    if model is not None:
        dimensions[MODEL_DIMENSION] = model
    if route is not None:
        dimensions[ROUTE_DIMENSION] = route
    return metric(METRICS_NAMESPACE, name, dimensions, statistic, label)


def search(
    namespace: str, dimensions: Sequence[str], terms: Mapping[str, str], statistic: str, label: str
) -> cloudwatch.MathExpression:
    """One line per metric that matches: ``SEARCH('{namespace,dims} Name="value"...', statistic, 60)``.

    Quoted values match exactly (CloudWatch search syntax), so model "iris" never picks up "iris-v2".
    """
    schema = ",".join([namespace, *dimensions])
    query = " ".join(f'{key}="{value}"' for key, value in terms.items())
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{{{schema}}} {query}', '{statistic}', {int(PERIOD.to_seconds())})",
        using_metrics={},
        label=label,
        period=PERIOD,
    )


def router_search(name: str, statistic: str, *, route: str | None = None) -> cloudwatch.MathExpression:
    """The router's ``name`` for every model (one line each), from the (service, model[, route]) dimension set."""
    dimensions = [MODEL_DIMENSION, *([ROUTE_DIMENSION] if route else []), SERVICE_DIMENSION]
    terms = {"MetricName": name, SERVICE_DIMENSION: ROUTER_SERVICE, **({ROUTE_DIMENSION: route} if route else {})}
    return search(METRICS_NAMESPACE, dimensions, terms, statistic, "")


def group(
    title: str,
    metrics: Sequence[cloudwatch.Metric | cloudwatch.MathExpression],
    *,
    unit: str = "",
) -> monitoring.CustomMetricGroup:
    return monitoring.CustomMetricGroup(
        title=title,
        metrics=list(metrics),
        graph_widget_axis=cloudwatch.YAxisProps(min=0, label=unit, show_units=False),
    )


def degraded_answers_by_cause(model: str | None) -> cloudwatch.MathExpression:
    """DegradedAnswers, one line per (model,) reason and cause: how callers got an answer the endpoint did not give."""
    terms = {"MetricName": "DegradedAnswers", **({MODEL_DIMENSION: model} if model else {})}
    return search(METRICS_NAMESPACE, DEGRADED_ANSWERS_DIMENSIONS, terms, "Sum", "")


def breaker_transitions(endpoint: str | None) -> cloudwatch.MathExpression:
    """BreakerTransitions, one line per endpoint and new state (open, half-open, closed)."""
    terms = {"MetricName": "BreakerTransitions", **({"endpoint": endpoint} if endpoint else {})}
    return search(METRICS_NAMESPACE, BREAKER_DIMENSIONS, terms, "Sum", "")


def sagemaker_metric(
    name: str, endpoint: str, statistic: str, label: str, *, variant: bool = True
) -> cloudwatch.Metric:
    """An AWS/SageMaker endpoint metric: invocation metrics are per variant, async backlog metrics per endpoint."""
    dimensions = {"EndpointName": endpoint, **({"VariantName": VARIANT_NAME} if variant else {})}
    return metric(SAGEMAKER_NAMESPACE, name, dimensions, statistic, label)


def microseconds_as_ms(metric_id: str, source: cloudwatch.IMetric, label: str) -> cloudwatch.MathExpression:
    """SageMaker reports ModelLatency, OverheadLatency and ModelSetupTime in microseconds; graphs read in ms."""
    return cloudwatch.MathExpression(
        expression=f"{metric_id} / 1000", using_metrics={metric_id: source}, label=label, period=PERIOD
    )


def model_router_groups(
    model: str, routes: Sequence[str], endpoints: Sequence[str]
) -> list[monitoring.CustomMetricGroup]:
    """One model's view of the router: latency percentiles, status mix, time in the endpoint call per route,
    degraded answers by cause and its endpoints' circuit transitions."""
    return [
        group(
            "Latency (router total)",
            [router_metric(LATENCY_METRIC, stat, stat, model=model) for stat in LATENCY_PERCENTILES],
            unit="ms",
        ),
        group(
            "Requests and status",
            [
                router_metric(name, "Sum", label, model=model)
                for name, label in (
                    (REQUESTS_METRIC, "requests"),
                    (CLIENT_ERRORS_METRIC, "4xx"),
                    (SERVER_ERRORS_METRIC, "5xx"),
                    (DEGRADED_REQUESTS_METRIC, "degraded"),
                    (SLOW_REQUESTS_METRIC, "over latency target"),
                )
            ],
            unit="count",
        ),
        group(
            "Time in the endpoint call",
            [
                router_metric(ENDPOINT_LATENCY_METRIC, stat, f"{route} {stat}", model=model, route=route)
                for route in routes
                for stat in ("p50", "p99")
            ],
            unit="ms",
        ),
        group("Degraded answers by reason and cause", [degraded_answers_by_cause(model)], unit="count"),
        group(
            "Circuit transitions",
            [breaker_transitions(endpoint) for endpoint in endpoints] or [breaker_transitions(None)],
            unit="count",
        ),
    ]


def cost_group(model: str | None, title: str = "Cost per 1,000 predictions (USD)") -> monitoring.CustomMetricGroup:
    """Hourly cost per 1,000 predictions of one model, or of the stage (None)."""
    return group(title, [cost_per_1000_predictions(model)], unit="USD")


def serverless_groups(endpoint: str, *, provisioned: bool) -> list[monitoring.CustomMetricGroup]:
    """A serverless endpoint: invocations and errors, model latency, cold model setup, provisioned concurrency."""
    groups = [
        group(
            "Invocations and errors",
            [
                sagemaker_metric("Invocations", endpoint, "Sum", "invocations"),
                sagemaker_metric("Invocation4XXErrors", endpoint, "Sum", "4xx"),
                sagemaker_metric("Invocation5XXErrors", endpoint, "Sum", "5xx"),
            ],
            unit="count",
        ),
        group(
            "Model latency",
            [
                microseconds_as_ms(f"latency{stat}", sagemaker_metric("ModelLatency", endpoint, stat, stat), stat)
                for stat in LATENCY_PERCENTILES
            ],
            unit="ms",
        ),
        group(
            "Model setup time (cold starts)",
            [
                microseconds_as_ms("setupavg", sagemaker_metric("ModelSetupTime", endpoint, "Average", "avg"), "avg"),
                microseconds_as_ms("setupmax", sagemaker_metric("ModelSetupTime", endpoint, "Maximum", "max"), "max"),
            ],
            unit="ms",
        ),
    ]
    if provisioned:
        # SageMaker documents Average, Maximum and Minimum for these two (no Sum).
        groups.append(
            group(
                "Provisioned concurrency",
                [
                    sagemaker_metric(
                        "ServerlessProvisionedConcurrencyUtilization", endpoint, "Maximum", "utilization (max)"
                    ),
                    sagemaker_metric(
                        "ServerlessProvisionedConcurrencySpilloverInvocations", endpoint, "Maximum", "spillover (max)"
                    ),
                    sagemaker_metric(
                        "ServerlessProvisionedConcurrencySpilloverInvocations", endpoint, "Average", "spillover (avg)"
                    ),
                ],
            )
        )
    return groups


def async_groups(endpoint: str) -> list[monitoring.CustomMetricGroup]:
    """An async endpoint: backlog, its oldest request, capacity, and the requests it failed or let expire."""
    return [
        group(
            "Backlog",
            [
                sagemaker_metric("ApproximateBacklogSize", endpoint, "Maximum", "backlog", variant=False),
                sagemaker_metric("HasBacklogWithoutCapacity", endpoint, "Maximum", "without capacity", variant=False),
            ],
            unit="requests",
        ),
        group(
            "Oldest request",
            [sagemaker_metric("ApproximateAgeOfOldestRequest", endpoint, "Maximum", "age", variant=False)],
            unit="s",
        ),
        group(
            "Failed and expired requests",
            [
                sagemaker_metric("InvocationFailures", endpoint, "Sum", "failed"),
                sagemaker_metric("ExpiredRequests", endpoint, "Sum", "expired (request TTL)"),
            ],
            unit="count",
        ),
    ]
