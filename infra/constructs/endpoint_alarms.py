"""EndpointAlarms: one model's on-call alarms, on the serverless and async endpoints of each of its versions, in
its own stack.

They notify the platform's page and ticket topics, known here by ARN only (read from the platform's SSM
parameters), so that adding or removing a model changes no other stack.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sns as sns
from constructs import Construct

from functions.config.telemetry import (
    BREAKER_OPEN_STATE,
    BREAKER_TRANSITIONS_METRIC,
    METRICS_NAMESPACE,
    ROUTER_SERVICE,
    SERVICE_DIMENSION,
)
from infra.config.types import AlarmConfig
from infra.constructs.async_scaling import SAGEMAKER_NAMESPACE
from infra.constructs.model_endpoint import VARIANT_NAME
from infra.constructs.on_call_alarm import OnCallAlarms, pascal


def _sagemaker_metric(
    metric_name: str, endpoint: str, *, variant: bool
) -> Callable[[str, Duration], cloudwatch.IMetric]:
    dimensions = {"EndpointName": endpoint, **({"VariantName": VARIANT_NAME} if variant else {})}
    return lambda statistic, period: cloudwatch.Metric(
        namespace=SAGEMAKER_NAMESPACE,
        metric_name=metric_name,
        dimensions_map=dimensions,
        statistic=statistic,
        period=period,
    )


def _spillover_share(endpoint: str) -> Callable[[str, Duration], cloudwatch.IMetric]:
    """The share of a serverless endpoint's invocations that ran outside its provisioned concurrency."""
    spillover = _sagemaker_metric("ServerlessProvisionedConcurrencySpilloverInvocations", endpoint, variant=True)
    provisioned = _sagemaker_metric("ServerlessProvisionedConcurrencyInvocations", endpoint, variant=True)
    return lambda statistic, period: cloudwatch.MathExpression(
        expression="spillover / (provisioned + spillover)",
        using_metrics={"spillover": spillover(statistic, period), "provisioned": provisioned(statistic, period)},
        period=period,
        label="share of invocations outside provisioned concurrency",
    )


def _opened(endpoint: str) -> Callable[[str, Duration], cloudwatch.IMetric]:
    """The router's BreakerTransitions into "open" for one endpoint (Powertools adds the service dimension)."""
    return lambda statistic, period: cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=BREAKER_TRANSITIONS_METRIC,
        dimensions_map={SERVICE_DIMENSION: ROUTER_SERVICE, "endpoint": endpoint, "state": BREAKER_OPEN_STATE},
        statistic=statistic,
        period=period,
    )


class EndpointAlarms(Construct):
    """Props (keyword-only):
        alarms / runbook_base_url: as for RouterAlarms.
        topic_arn: the ARN of the platform's alarm topic of a name ("page", "ticket").
        serverless_endpoints: each serverless endpoint's name and whether it has provisioned concurrency (its PC
            alarms exist only then): one per version that has one.
        async_endpoints: the async endpoints' names, one per version that has one.

    Attributes: ``alarms`` (alarm name -> list of alarms), ``on_call`` (for the model's SLO pages).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarms: Mapping[str, AlarmConfig],
        runbook_base_url: str,
        topic_arn: Callable[[str], str],
        serverless_endpoints: Sequence[tuple[str, bool]],
        async_endpoints: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        topics: dict[str, sns.ITopic] = {}

        def topic(name: str) -> sns.ITopic:
            if name not in topics:
                topics[name] = sns.Topic.from_topic_arn(self, f"{pascal(name)}Topic", topic_arn(name))
            return topics[name]

        on_call = OnCallAlarms(configs=alarms, runbook_base_url=runbook_base_url, topic=topic)
        self.on_call = on_call
        self.alarms = on_call.alarms
        for serverless_endpoint, serverless_provisioned in serverless_endpoints:
            subject = f"serverless endpoint {serverless_endpoint}"
            if serverless_provisioned:
                on_call.add(
                    self,
                    "serverless_pc_low_utilization",
                    serverless_endpoint,
                    subject,
                    _sagemaker_metric("ServerlessProvisionedConcurrencyUtilization", serverless_endpoint, variant=True),
                )
                on_call.add(
                    self, "serverless_pc_spillover", serverless_endpoint, subject, _spillover_share(serverless_endpoint)
                )
            on_call.add(
                self,
                "serverless_5xx_errors",
                serverless_endpoint,
                subject,
                _sagemaker_metric("Invocation5XXErrors", serverless_endpoint, variant=True),
            )
            on_call.add(
                self,
                "circuit_open",
                serverless_endpoint,
                f"endpoint {serverless_endpoint}",
                _opened(serverless_endpoint),
            )
        for async_endpoint in async_endpoints:
            subject = f"async endpoint {async_endpoint}"
            on_call.add(
                self,
                "async_backlog_without_capacity",
                async_endpoint,
                subject,
                _sagemaker_metric("HasBacklogWithoutCapacity", async_endpoint, variant=False),
            )
            on_call.add(
                self,
                "async_oldest_request_age",
                async_endpoint,
                subject,
                _sagemaker_metric("ApproximateAgeOfOldestRequest", async_endpoint, variant=False),
            )
