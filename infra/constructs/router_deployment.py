"""RouterDeployment: CodeDeploy shifts the router's ``live`` alias to each new version, and rolls it back.

Every change to the router's code or configuration (the packaged ``functions/models.json`` included: a wrong
weight or endpoint name) publishes a new version; the alias's ``CodeDeployLambdaAliasUpdate`` update policy
hands the move to CodeDeploy. First the pre-traffic hook (functions/handlers/deploy_hook/) sends the smoke
requests to the new version; then CodeDeploy shifts traffic as ``router.deployment`` says, and rolls the alias
back when the hook fails or an alarm on the NEW version fires while it shifts.

Provisioned concurrency through a deployment: the alias keeps its provisioned concurrency while CodeDeploy
weights it across the two versions. The Lambda API reference (PutProvisionedConcurrencyConfig,
ProvisionedConcurrencyConfigListItem) says the alias's AllocatedProvisionedConcurrentExecutions "fluctuates
depending on the amount of concurrency that is provisioned for the function versions" when a weighted alias is
used during linear and canary deployments. The utilization and spillover alarms (infra/constructs/alarms.py)
read the alias-level metrics (FunctionName + Resource ``<fn>:live``), which cover both versions' invocations,
so they keep meaning "the alias's capacity" during a shift; a canary of 5 minutes is shorter than their
windows, so a shift alone does not page.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_codedeploy as codedeploy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.config.telemetry import (
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    REQUESTS_METRIC,
    ROUTER_SERVICE,
    ROUTER_VERSION_DIMENSION,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
)
from infra.config.types import RouterDeploymentConfig, SloConfig
from infra.constructs.python_function import PythonFunction
from infra.constructs.router import ALIAS_NAME, Router
from infra.guardrails import acknowledge, resource_token

HOOK_HANDLER: Final[str] = "functions.handlers.deploy_hook.handler.lambda_handler"
HOOK_MEMORY_MB: Final[int] = 256
# Lambda's maximum, whatever the model count: the hook ends when its smoke requests are answered, and a
# timeout sized by the number of models would change the platform stack each time a model is added.
HOOK_TIMEOUT_S: Final[int] = 900
# The rollback alarms read one-minute periods: a canary of 5 minutes must be able to stop in time.
PERIOD: Final[Duration] = Duration.minutes(1)
# Below this many requests a minute on the new version, its error ratio reads 0: one 503 out of three answers
# in a quiet minute (a caller's bad luck with an endpoint) must not roll a deployment back.
MIN_REQUESTS_PER_MINUTE: Final[int] = 10
# CodeDeploy's predefined Lambda configs, by (strategy, percentage, interval): no custom config resource needed.
PREDEFINED: Final[dict[tuple[str, int, int], codedeploy.ILambdaDeploymentConfig]] = {
    ("all_at_once", 100, 0): codedeploy.LambdaDeploymentConfig.ALL_AT_ONCE,
    ("canary", 10, 5): codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_5_MINUTES,
    ("canary", 10, 10): codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_10_MINUTES,
    ("canary", 10, 15): codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_15_MINUTES,
    ("canary", 10, 30): codedeploy.LambdaDeploymentConfig.CANARY_10_PERCENT_30_MINUTES,
    ("linear", 10, 1): codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_1_MINUTE,
    ("linear", 10, 2): codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_2_MINUTES,
    ("linear", 10, 3): codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_3_MINUTES,
    ("linear", 10, 10): codedeploy.LambdaDeploymentConfig.LINEAR_10_PERCENT_EVERY_10_MINUTES,
}


def error_ratio_threshold(slo: SloConfig) -> float:
    """The fastest burn-rate page's rate on the strictest availability objective: a new version whose 5XX
    share stays above it would page the SLO's fast burn if it took all the traffic."""
    strictest = max(targets.availability_target for targets in (slo.defaults, *slo.models.values()))
    fastest = max(window.burn_rate for window in slo.burn_rate_pages)
    return round(fastest * (1 - strictest), 6)


def latency_threshold_ms(slo: SloConfig) -> int:
    """The loosest latency target: the router_version metrics mix every model, so a stricter model's target
    would roll back a version for a slower model's normal answers."""
    return max(targets.latency_target_ms for targets in (slo.defaults, *slo.models.values()))


def deployment_config(scope: Construct, deployment: RouterDeploymentConfig) -> codedeploy.ILambdaDeploymentConfig:
    key = (deployment.strategy, deployment.percentage, deployment.interval_minutes)
    if key in PREDEFINED:
        return PREDEFINED[key]
    interval = Duration.minutes(deployment.interval_minutes)
    routing = (
        codedeploy.TrafficRouting.time_based_canary(interval=interval, percentage=deployment.percentage)
        if deployment.strategy == "canary"
        else codedeploy.TrafficRouting.time_based_linear(interval=interval, percentage=deployment.percentage)
    )
    return codedeploy.LambdaDeploymentConfig(scope, "DeploymentConfig", traffic_routing=routing)


class RouterDeployment(Construct):
    """The CodeDeploy application and deployment group on the router's ``live`` alias, its pre-traffic hook
    and the alarms on the version being deployed.

    Props (keyword-only):
        router: the router (its function, current version and alias).
        deployment: how the alias shifts (``router.deployment``).
        slo: the stage's SLO settings (the rollback thresholds).
        powertools_layer_arn, code, log_retention, log_level, log_removal_policy: the hook function's.

    Attributes: ``application``, ``deployment_group``, ``hook`` (the PythonFunction), ``alarms`` (by name).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        router: Router,
        deployment: RouterDeploymentConfig,
        slo: SloConfig,
        powertools_layer_arn: str,
        code: lambda_.Code,
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        version = router.function.current_version
        self.hook = PythonFunction(
            self,
            "PreTrafficHook",
            handler=HOOK_HANDLER,
            description="CodeDeploy pre-traffic hook: smoke requests to the router version being deployed",
            code=code,
            powertools_layer_arn=powertools_layer_arn,
            memory_mb=HOOK_MEMORY_MB,
            timeout=Duration.seconds(HOOK_TIMEOUT_S),
            environment={
                "ROUTER_FUNCTION_NAME": router.function.function_name,
                "ROUTER_FUNCTION_VERSION": version.version,
            },
            log_retention=log_retention,
            log_level=log_level,
            log_removal_policy=log_removal_policy,
        )
        # The smoke requests carry the hook's role as their caller, so a caller policy can admit them by name.
        self.hook.function.add_environment("SMOKE_CALLER_ARN", self.hook.role.role_arn)
        # Only the version under deployment: never the alias (callers' traffic) nor another version.
        self.hook.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[version.function_arn])
        )
        self.alarms = self._rollback_alarms(router, version.version, slo)
        self.application = codedeploy.LambdaApplication(self, "Application")
        self.deployment_group = codedeploy.LambdaDeploymentGroup(
            self,
            "DeploymentGroup",
            application=self.application,
            alias=router.alias,
            deployment_config=deployment_config(self, deployment),
            alarms=list(self.alarms.values()),
            pre_hook=self.hook.function,
            auto_rollback=codedeploy.AutoRollbackConfig(
                failed_deployment=True, stopped_deployment=False, deployment_in_alarm=True
            ),
        )
        self.deployment_group.grant_put_lifecycle_event_hook_execution_status(self.hook.role)
        # The alias update starts the deployment: the hook must already name the new version, and the alarms
        # must already watch it, or the deployment would test and watch the previous one.
        router.alias.node.add_dependency(self.hook.function, *self.alarms.values())
        acknowledge(
            self.deployment_group,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSCodeDeployRoleForLambdaLimited]",
            "CodeDeploy's AWS-managed service policy for Lambda deployments (reading and updating the alias, "
            "reading the group's alarms); the pre-traffic hook is granted to it separately, by ARN.",
        )
        acknowledge(
            self.deployment_group,
            f"AwsSolutions-IAM5[Resource::{resource_token(self.hook.function, 'Arn')}:*]",
            "CodeDeploy invokes the pre-traffic hook function: its ARN and its qualified ARNs (grantInvoke), no "
            "other function.",
        )

    def _rollback_alarms(self, router: Router, version: str, slo: SloConfig) -> dict[str, cloudwatch.Alarm]:
        """The version's alarms. CodeDeploy takes alarm names (AlarmConfiguration.Alarms, at most 10) and its
        user guide describes alarms that watch a metric; composite alarms are not documented as supported, so
        the SLO's burn-rate pages (composites, per model over every version) are not used: the error ratio
        below applies their fast-burn threshold to the new version alone. No topic: they exist for CodeDeploy,
        and a version that stays live and keeps failing pages through the router's own alarms and SLO pages."""
        by_version = {SERVICE_DIMENSION: ROUTER_SERVICE, ROUTER_VERSION_DIMENSION: version}

        def router_metric(name: str, statistic: str) -> cloudwatch.Metric:
            # The router's EMF set (service, router_version) (functions/handlers/router/request_metrics.py).
            return cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=name,
                dimensions_map=by_version,
                statistic=statistic,
                period=PERIOD,
            )

        return {
            # Lambda's Errors (unhandled exceptions, timeouts, init failures) of the alias's invocations that
            # ran the new version: FunctionName + Resource (<fn>:<alias>) + ExecutedVersion, the set Lambda
            # publishes for alias invocations (Lambda developer guide, "Types of metrics for Lambda functions",
            # dimensions). The router answers its own failures, so one error a minute is already a defect;
            # two minutes of three, so a lone timeout in a blip does not roll back.
            "errors": cloudwatch.Alarm(
                self,
                "NewVersionErrors",
                alarm_description="The router version being deployed raised or timed out (CodeDeploy rollback).",
                metric=cloudwatch.Metric(
                    namespace="AWS/Lambda",
                    metric_name="Errors",
                    dimensions_map={
                        "FunctionName": router.function.function_name,
                        "Resource": f"{router.function.function_name}:{ALIAS_NAME}",
                        "ExecutedVersion": version,
                    },
                    statistic="Sum",
                    period=PERIOD,
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            # The new version's 5XX answers (503s and 504s included, which Lambda's Errors never counts).
            "server_errors": cloudwatch.Alarm(
                self,
                "NewVersionServerErrors",
                alarm_description=(
                    "The router version being deployed answers 5XX faster than the SLO's fast burn allows "
                    "(CodeDeploy rollback)."
                ),
                metric=cloudwatch.MathExpression(
                    expression=f"IF(requests >= {MIN_REQUESTS_PER_MINUTE}, errors / requests, 0)",
                    using_metrics={
                        "errors": router_metric(SERVER_ERRORS_METRIC, "Sum"),
                        "requests": router_metric(REQUESTS_METRIC, "Sum"),
                    },
                    period=PERIOD,
                    label="share of the new version's answers that were 5XX",
                ),
                threshold=error_ratio_threshold(slo),
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
            # p99 over the latency target means more than 1% of the new version's answers are slow: the latency
            # SLO (99% within the target) is being missed while it holds. Three minutes running: a p99 of a
            # canary's few answers is noisy.
            "latency": cloudwatch.Alarm(
                self,
                "NewVersionLatency",
                alarm_description=(
                    "The router version being deployed answers slower than the latency target at p99 "
                    "(CodeDeploy rollback)."
                ),
                metric=router_metric(LATENCY_METRIC, "p99"),
                threshold=latency_threshold_ms(slo),
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=3,
                datapoints_to_alarm=3,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ),
        }
