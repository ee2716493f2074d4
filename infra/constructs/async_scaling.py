"""The async endpoint's instance autoscaling, and the one update Application Auto Scaling would refuse.

SageMaker fails an UpdateEndpoint that changes the instance type of a variant registered as a scalable target
("Update endpoints that use auto scaling", SageMaker developer guide): the target must be deregistered first
and registered again after. In one CloudFormation deploy that order comes from three pieces:

1. ``DeregisterBeforeUpdate``, an SDK call the endpoint depends on, whose physical id holds the instance type:
   a new type updates it, and it deregisters the variant's target (which deletes its policies) before
   CloudFormation updates the endpoint. On a first deploy no target exists yet (ObjectNotFound is ignored).
2. The scalable target and its policies have construct ids named by the instance type, so the new type's
   target and policies are new resources, created after the endpoint update (they depend on the endpoint).
3. They are retained on removal: the old type's target shares the new one's ResourceId, and deleting it during
   CloudFormation's cleanup would deregister the new registration. (The endpoint's own deletion deregisters
   whatever is registered on it, so retaining leaves nothing behind when the stack goes.)
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy, Stack, custom_resources
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from infra.config.types import AsyncEndpointConfig
from infra.constructs.on_call_alarm import pascal
from infra.guardrails import acknowledge

SAGEMAKER_NAMESPACE: Final[str] = "AWS/SageMaker"
INSTANCE_DIMENSION: Final[str] = "sagemaker:variant:DesiredInstanceCount"
# The construct id CDK gives the AwsCustomResource provider function, one per stack (aws-cdk-lib custom-resources).
SDK_CALL_PROVIDER_ID: Final[str] = "AWS679f53fac002430cb0da5b7982bd2287"


def variant_resource_id(endpoint_name: str, variant_name: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant_name}"


class AsyncInstanceScaling(Construct):
    """Instances from 0 to ``max_instances`` on the backlog per instance, woken from zero by a step.

    Attributes: ``target``, ``wake_alarm``, ``deregister_before_update``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        endpoint: sagemaker.CfnEndpoint,
        endpoint_name: str,
        variant_name: str,
        sizing: AsyncEndpointConfig,
        scaling_role: iam.IRole,
    ) -> None:
        super().__init__(scope, construct_id)
        resource_id = variant_resource_id(endpoint_name, variant_name)
        self.deregister_before_update = custom_resources.AwsCustomResource(
            self,
            "DeregisterBeforeUpdate",
            on_update=custom_resources.AwsSdkCall(
                service="ApplicationAutoScaling",
                action="deregisterScalableTarget",
                parameters={
                    "ServiceNamespace": "sagemaker",
                    "ResourceId": resource_id,
                    "ScalableDimension": INSTANCE_DIMENSION,
                },
                physical_resource_id=custom_resources.PhysicalResourceId.of(f"{resource_id}@{sizing.instance_type}"),
                ignore_error_codes_matching="ObjectNotFoundException",
            ),
            policy=custom_resources.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["application-autoscaling:DeregisterScalableTarget"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
        )
        endpoint.node.add_dependency(self.deregister_before_update)
        # The SDK call runs in CDK's one provider function per stack, whose role only writes its own logs.
        singleton = Stack.of(self).node.find_child(SDK_CALL_PROVIDER_ID)
        acknowledge(
            singleton,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK's SDK-call provider function writes its own logs with the AWS managed basic execution policy.",
        )
        acknowledge(
            self.deregister_before_update,
            "AwsSolutions-IAM5[Resource::*]",
            "Application Auto Scaling's DeregisterScalableTarget takes no resource-level permission for a "
            "SageMaker variant (its scalable-target ARNs are random ids); the call names the variant itself.",
        )

        named = pascal(sizing.instance_type)
        self.target = appscaling.ScalableTarget(
            self,
            f"Target{named}",
            service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=resource_id,
            scalable_dimension=INSTANCE_DIMENSION,
            min_capacity=0,
            max_capacity=sizing.max_instances,
            role=scaling_role,
        )
        self.target.node.add_dependency(endpoint)
        self.target.scale_to_track_metric(
            "BacklogPerInstance",
            target_value=sizing.backlog_target_per_instance,
            custom_metric=cloudwatch.Metric(
                namespace=SAGEMAKER_NAMESPACE,
                metric_name="ApproximateBacklogSizePerInstance",
                dimensions_map={"EndpointName": endpoint_name},
                statistic="Average",
                period=Duration.minutes(1),
            ),
            scale_in_cooldown=Duration.seconds(sizing.scale_in_cooldown_s),
            scale_out_cooldown=Duration.seconds(sizing.scale_out_cooldown_s),
        )
        # Target tracking alone never wakes an endpoint at zero: with no instances there is no per-instance
        # backlog to track. HasBacklogWithoutCapacity is 1 exactly then, and a step adds the first instance.
        wake = appscaling.StepScalingAction(
            self,
            f"WakeFromZero{named}",
            scaling_target=self.target,
            adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY,
            cooldown=Duration.seconds(sizing.scale_out_cooldown_s),
            metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM,
        )
        wake.add_adjustment(adjustment=1, lower_bound=0)
        for resource in (*self.target.node.find_all(), *wake.node.find_all()):
            if isinstance(resource, appscaling.CfnScalableTarget | appscaling.CfnScalingPolicy):
                resource.apply_removal_policy(RemovalPolicy.RETAIN)
        self.wake_alarm = cloudwatch.Alarm(
            self,
            "WakeFromZeroAlarm",
            alarm_description=(
                f"Scaling trigger for async endpoint {endpoint_name}, not a page: requests are queued and no instance "
                "is running, so add one. If it stays in ALARM, see docs/runbooks/async-backlog-without-capacity.md"
            ),
            metric=cloudwatch.Metric(
                namespace=SAGEMAKER_NAMESPACE,
                metric_name="HasBacklogWithoutCapacity",
                dimensions_map={"EndpointName": endpoint_name},
                statistic="Maximum",
                period=Duration.minutes(1),
            ),
            threshold=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.wake_alarm.add_alarm_action(cloudwatch_actions.ApplicationScalingAction(wake))
