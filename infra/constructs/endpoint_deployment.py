"""An endpoint's deployment guardrail: the CfnEndpoint DeploymentConfig and the alarms that roll it back.

The rollback alarms watch the endpoint's variant (EndpointName + VariantName) on AWS/SageMaker
Invocation5XXErrors and ModelLatency; SageMaker checks them during every baking period and shifts all
traffic back to the old fleet when one is in ALARM (developer guide, "Auto-Rollback Configuration and
Monitoring"). They notify no topic, like the router's CodeDeploy rollback alarms: they are in ALARM whenever
the variant is, baking or not (at rollback_5xx_per_minute 0, one stray 5XX a minute), and the endpoint's own
5XX, SLO and latency alarms already tell people what callers feel.
Which traffic modes each endpoint type takes: infra/config/endpoint_deployment.py.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config.types import EndpointDeploymentConfig
from infra.constructs.async_scaling import SAGEMAKER_NAMESPACE

# ModelLatency is published in microseconds (SageMaker "Amazon SageMaker AI metrics in Amazon CloudWatch").
MICROSECONDS_PER_MS: Final[int] = 1000
ROLLBACK_PERIOD: Final[Duration] = Duration.minutes(1)
TRAFFIC_TYPES: Final[dict[str, str]] = {"all_at_once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}


class EndpointDeployment(Construct):
    """Props (keyword-only): endpoint_name, variant_name (the variant the endpoint config names), config.

    Attributes: ``errors_alarm``, ``latency_alarm``, ``deployment_config`` (for the CfnEndpoint).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint_name: str,
        variant_name: str,
        config: EndpointDeploymentConfig,
    ) -> None:
        super().__init__(scope, construct_id)
        dimensions = {"EndpointName": endpoint_name, "VariantName": variant_name}
        self.errors_alarm = cloudwatch.Alarm(
            self,
            "Rollback5xxErrors",
            alarm_description=(
                f"Deployment guardrail (no topic, no one notified): SageMaker rolls an update of {endpoint_name} back "
                f"while its variant {variant_name} answers more than {config.rollback_5xx_per_minute} 5XX a minute."
            ),
            metric=cloudwatch.Metric(
                namespace=SAGEMAKER_NAMESPACE,
                metric_name="Invocation5XXErrors",
                dimensions_map=dimensions,
                statistic="Sum",
                period=ROLLBACK_PERIOD,
            ),
            threshold=config.rollback_5xx_per_minute,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.latency_alarm = cloudwatch.Alarm(
            self,
            "RollbackModelLatency",
            alarm_description=(
                f"Deployment guardrail (no topic, no one notified): SageMaker rolls an update of {endpoint_name} back "
                f"while its variant {variant_name}'s p99 model latency is above {config.rollback_p99_latency_ms} ms."
            ),
            metric=cloudwatch.Metric(
                namespace=SAGEMAKER_NAMESPACE,
                metric_name="ModelLatency",
                dimensions_map=dimensions,
                statistic="p99",
                period=ROLLBACK_PERIOD,
            ),
            threshold=config.rollback_p99_latency_ms * MICROSECONDS_PER_MS,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        step = (
            sagemaker.CfnEndpoint.CapacitySizeProperty(type="CAPACITY_PERCENT", value=config.step_percent)
            if config.step_percent
            else None
        )
        self.deployment_config = sagemaker.CfnEndpoint.DeploymentConfigProperty(
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
                    type=TRAFFIC_TYPES[config.traffic],
                    wait_interval_in_seconds=config.wait_interval_s,
                    canary_size=step if config.traffic == "canary" else None,
                    linear_step_size=step if config.traffic == "linear" else None,
                ),
                termination_wait_in_seconds=config.termination_wait_s,
                maximum_execution_timeout_in_seconds=config.max_execution_timeout_s,
            ),
            auto_rollback_configuration=sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[
                    sagemaker.CfnEndpoint.AlarmProperty(alarm_name=alarm.alarm_name)
                    for alarm in (self.errors_alarm, self.latency_alarm)
                ]
            ),
        )
