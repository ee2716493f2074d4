"""StageDashboard: ``InferenceRouter-<stage>``, the stage at a glance, in the platform stack.

Every model is on it through SEARCH expressions over the router's ``model`` dimension (one line per model,
up to the 500 time series a search returns), so the platform stack does not change when a model is added;
each SageMaker-routed model's endpoints are on its own dashboard (:mod:`infra.constructs.model_dashboard`).
"""

from __future__ import annotations

from collections.abc import Sequence

import cdk_monitoring_constructs as monitoring
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.config.telemetry import (
    CLIENT_ERRORS_METRIC,
    COLD_STARTS_METRIC,
    DEGRADED_REQUESTS_METRIC,
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    MISMATCHED_NOTIFICATIONS_METRIC,
    OLDEST_OPEN_JOB_AGE_METRIC,
    REQUESTS_METRIC,
    RESULTS_SERVICE,
    ROUTER_SERVICE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SWEEPER_SERVICE,
    UNHANDLED_ERRORS_METRIC,
)
from infra.constructs.cost_metrics import stage_cost
from infra.constructs.dashboards import (
    LATENCY_PERCENTILES,
    PERIOD,
    breaker_transitions,
    cost_group,
    dashboard_name,
    degraded_answers_by_cause,
    facade,
    group,
    metric,
    router_metric,
    router_search,
    search,
)


def _percent_of_invocations(
    numerator: cloudwatch.IMetric, invocations: cloudwatch.IMetric, label: str
) -> cloudwatch.MathExpression:
    return cloudwatch.MathExpression(
        expression="100 * FILL(part, 0) / invocations",
        using_metrics={"part": numerator, "invocations": invocations},
        label=label,
        period=PERIOD,
    )


def _sweeper_counts() -> cloudwatch.MathExpression:
    expression = (
        f'SEARCH(\'{{{METRICS_NAMESPACE},{SERVICE_DIMENSION}}} {SERVICE_DIMENSION}="{SWEEPER_SERVICE}" '
        f"NOT MetricName=\"{OLDEST_OPEN_JOB_AGE_METRIC}\"', 'Sum', {int(PERIOD.to_seconds())})"
    )
    return cloudwatch.MathExpression(expression=expression, using_metrics={}, label="", period=PERIOD)


def _service_metric(name: str, service: str, statistic: str, label: str) -> cloudwatch.Metric:
    return metric(METRICS_NAMESPACE, name, {SERVICE_DIMENSION: service}, statistic, label)


class StageDashboard(Construct):
    """Props (keyword-only):
    stage: the stage name (names the dashboard).
    router_alias: the router's ``live`` alias (Lambda metrics per alias).
    router_provisioned: whether the alias has provisioned concurrency (its widgets then).
    rest_api / api_stage_name: the inference API and its stage.
    dead_letter_queue: the async notification dead-letter queue.
    router_models: the models without a stack of their own (in the router): their cost widgets live here.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        router_alias: lambda_.Alias,
        router_provisioned: bool,
        rest_api: apigateway.IRestApi,
        api_stage_name: str,
        dead_letter_queue: sqs.IQueue,
        router_models: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        dashboards = facade(self, dashboard_name(stage))
        dashboards.add_large_header(f"Inference router ({stage})")
        dashboards.monitor_custom(
            alarm_friendly_name="models",
            human_readable_name="Every model, one line each (per-model dashboards: InferenceRouter-<stage>-<model>)",
            metric_groups=[
                *(
                    group(f"Latency {stat} by model", [router_search(LATENCY_METRIC, stat)], unit="ms")
                    for stat in LATENCY_PERCENTILES
                ),
                group("Requests by model", [router_search(REQUESTS_METRIC, "Sum")], unit="count"),
                group("5xx by model", [router_search(SERVER_ERRORS_METRIC, "Sum")], unit="count"),
                group("4xx by model", [router_search(CLIENT_ERRORS_METRIC, "Sum")], unit="count"),
                group("Degraded requests by model", [router_search(DEGRADED_REQUESTS_METRIC, "Sum")], unit="count"),
                group("Degraded answers by model, reason and cause", [degraded_answers_by_cause(None)], unit="count"),
                group("Circuit transitions by endpoint and state", [breaker_transitions(None)], unit="count"),
                group(
                    "In-Lambda models: latency p99",
                    [router_search(LATENCY_METRIC, "p99", route="lambda")],
                    unit="ms",
                ),
            ],
        )
        dashboards.monitor_custom(
            alarm_friendly_name="cost",
            human_readable_name="Cost: the router's requests and the async endpoints' instance time",
            metric_groups=[
                cost_group(None, "Cost per 1,000 predictions, stage (USD)"),
                group("Cost per day, stage (USD)", [stage_cost()], unit="USD"),
                *(cost_group(model, f"Cost per 1,000 predictions, {model} (USD)") for model in router_models),
            ],
        )
        dashboards.monitor_lambda_function(lambda_function=router_alias, human_readable_name="Router (live alias)")
        dashboards.monitor_custom(
            alarm_friendly_name="router-capacity",
            human_readable_name="Router: cold starts and provisioned concurrency",
            metric_groups=self._router_capacity(router_alias, provisioned=router_provisioned),
        )
        dashboards.monitor_api_gateway(api=rest_api, api_stage=api_stage_name, human_readable_name="Inference API")
        dashboards.monitor_custom(
            alarm_friendly_name="async-jobs",
            human_readable_name="Async jobs",
            metric_groups=[
                group(
                    "Job outcomes",
                    [
                        _service_metric("JobsSucceeded", RESULTS_SERVICE, "Sum", "succeeded"),
                        _service_metric("JobsFailed", RESULTS_SERVICE, "Sum", "failed"),
                    ],
                    unit="count",
                ),
                # Every JobsSwept<Outcome> the sweeper emits (its other metric is the age below), new outcomes too.
                group("Jobs settled by the sweeper", [_sweeper_counts()], unit="count"),
                group(
                    "Oldest open job",
                    [_service_metric(OLDEST_OPEN_JOB_AGE_METRIC, SWEEPER_SERVICE, "Maximum", "age")],
                    unit="s",
                ),
                group(
                    "Anomalies",
                    [
                        search(
                            METRICS_NAMESPACE,
                            ("marker", SERVICE_DIMENSION),
                            {"MetricName": "JobsQueuedUnrecorded"},
                            "Sum",
                            "queued, unrecorded",
                        ),
                        _service_metric(
                            MISMATCHED_NOTIFICATIONS_METRIC, RESULTS_SERVICE, "Sum", "forged notifications"
                        ),
                        _service_metric(UNHANDLED_ERRORS_METRIC, ROUTER_SERVICE, "Sum", "router unhandled errors"),
                    ],
                    unit="count",
                ),
            ],
        )
        dashboards.monitor_sqs_queue(queue=dead_letter_queue, human_readable_name="Async result dead-letter queue")

    @staticmethod
    def _router_capacity(alias: lambda_.Alias, *, provisioned: bool) -> list[monitoring.CustomMetricGroup]:
        invocations = alias.metric_invocations(statistic="Sum", period=PERIOD)
        groups = [
            group(
                "Cold-start rate",
                [
                    _percent_of_invocations(
                        router_metric(COLD_STARTS_METRIC, "Sum", "cold starts"), invocations, "% of invocations"
                    )
                ],
                unit="%",
            )
        ]
        if provisioned:
            groups += [
                group(
                    "Provisioned concurrency utilization",
                    [alias.metric("ProvisionedConcurrencyUtilization", statistic="Maximum", period=PERIOD)],
                    unit="share",
                ),
                group(
                    "Spillover beyond provisioned concurrency",
                    [
                        _percent_of_invocations(
                            alias.metric("ProvisionedConcurrencySpilloverInvocations", statistic="Sum", period=PERIOD),
                            invocations,
                            "% of invocations",
                        )
                    ],
                    unit="%",
                ),
            ]
        return groups
