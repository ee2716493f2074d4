"""Router: the Python Lambda behind the API, on Graviton, served through its ``live`` alias.

Only the ``functions`` package travels in the asset (no Docker bundling): boto3 comes with the Lambda
runtime and Powertools from the AWS-managed public layer, so nothing else is needed at run time.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.config.prices import SIZES_PREFIX_VARIABLE
from functions.config.telemetry import LATENCY_TARGETS_VARIABLE, METRICS_NAMESPACE, ROUTER_SERVICE
from infra.config.types import RouterPcAutoscaling
from infra.constructs.python_function import PythonFunction, functions_code
from infra.constructs.stage_endpoints import grant_stage_endpoints
from infra.guardrails import acknowledge, nag_text

HANDLER: Final[str] = "functions.handlers.router.handler.lambda_handler"
ALIAS_NAME: Final[str] = "live"


class Router(Construct):
    """The router function, its ``live`` alias (with provisioned concurrency when asked) and its role.

    Props (keyword-only):
        powertools_layer_arn: the AWS-managed Powertools v3 layer for python3.14/arm64 in the stack's region.
        endpoint_name_prefix: ENDPOINT_NAME_PREFIX; SageMaker endpoint name = prefix + route endpoint name.
        invoke_budget_ms / response_reserve_ms: INVOKE_BUDGET_MS / RESPONSE_RESERVE_MS (the router settings).
        memory_mb (128-10240), timeout (below the API Gateway timeout; checked by the stage config).
        reserved_concurrency: None leaves the function in the account's unreserved pool.
        provisioned_concurrency: on the alias; 0 = none. With ``pc_autoscaling``, the initial value.
        pc_autoscaling: Application Auto Scaling of the alias's provisioned concurrency (target tracking on
            LambdaProvisionedConcurrencyUtilization and/or scheduled actions, UTC); None = fixed.
        snap_start: SnapStart on published versions (the stage config refuses it with provisioned concurrency).
        log_retention, log_level, log_removal_policy: the function's log group and level.
        invokes_endpoints: whether any model routes to SageMaker; the router may then invoke (sync and async)
            and describe (its status, for readiness) every endpoint whose name starts with
            ``endpoint_name_prefix``, this stage's endpoints, whichever model stack deploys them, so that adding a
            model never widens or edits this policy.
        async_environment: the async path's settings (AsyncStorage.function_environment); None = sync only.
        caller_policy: CALLER_POLICY, the stage's caller policy as the router reads it; None = no policy (every
            authenticated caller, every model).
        latency_targets: LATENCY_TARGETS_MS, each model's latency target (infra/config/slo.py); None = unset.
        cost_environment: PRICES, SERVERLESS_ENDPOINT_SIZES and SERVERLESS_SIZE_PARAMETER_PREFIX
            (infra/config/costing.py); None = no CostUsd. The router may then read the SSM parameters under that
            prefix, the endpoint sizes model stacks write, and no others.
        code: defaults to the repo's ``functions`` package.

    Attributes: ``function``, ``alias``, ``role``, ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        powertools_layer_arn: str,
        endpoint_name_prefix: str,
        invoke_budget_ms: int,
        response_reserve_ms: int,
        memory_mb: int,
        timeout: Duration,
        reserved_concurrency: int | None,
        provisioned_concurrency: int,
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
        invokes_endpoints: bool,
        async_environment: dict[str, str] | None = None,
        caller_policy: str | None = None,
        latency_targets: str | None = None,
        cost_environment: dict[str, str] | None = None,
        code: lambda_.Code | None = None,
        pc_autoscaling: RouterPcAutoscaling | None = None,
        snap_start: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            "ENDPOINT_NAME_PREFIX": endpoint_name_prefix,
            "INVOKE_BUDGET_MS": str(invoke_budget_ms),
            "RESPONSE_RESERVE_MS": str(response_reserve_ms),
            "POWERTOOLS_SERVICE_NAME": ROUTER_SERVICE,
            "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            **(async_environment or {}),
            **({"CALLER_POLICY": caller_policy} if caller_policy is not None else {}),
            **({LATENCY_TARGETS_VARIABLE: latency_targets} if latency_targets is not None else {}),
            **(cost_environment or {}),
        }
        built = PythonFunction(
            self,
            "Router",
            handler=HANDLER,
            description="Open Inference Protocol router: validates requests and routes them to SageMaker",
            code=code if code is not None else functions_code(),
            powertools_layer_arn=powertools_layer_arn,
            memory_mb=memory_mb,
            timeout=timeout,
            environment=environment,
            log_retention=log_retention,
            log_level=log_level,
            log_removal_policy=log_removal_policy,
            reserved_concurrency=reserved_concurrency,
        )
        self.function, self.role, self.log_group = built.function, built.role, built.log_group
        if snap_start:
            # Python 3.12 and later managed runtimes support SnapStart, on arm64 too (Lambda developer guide,
            # "Improving startup performance with Lambda SnapStart", supported features and limitations). The
            # router reseeds its jitter randomness after each restore (functions/handlers/router/snapstart.py).
            cfn_function = self.function.node.default_child
            assert isinstance(cfn_function, lambda_.CfnFunction)
            cfn_function.snap_start = lambda_.CfnFunction.SnapStartProperty(apply_on="PublishedVersions")
        if invokes_endpoints:
            grant_stage_endpoints(
                self.role,
                # DescribeEndpoint: the ready routes read each endpoint's status (adapters/endpoint_status.py).
                ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync", "sagemaker:DescribeEndpoint"],
                endpoint_name_prefix,
                who="router",
            )
        size_prefix = (cost_environment or {}).get(SIZES_PREFIX_VARIABLE)
        if size_prefix is not None:
            self._may_read_endpoint_sizes(size_prefix)
        # A new version is published whenever code or configuration changes; the alias moves to it, and its
        # provisioned concurrency is warmed before CloudFormation reports the update complete.
        self.alias = lambda_.Alias(
            self,
            "LiveAlias",
            alias_name=ALIAS_NAME,
            version=self.function.current_version,
            provisioned_concurrent_executions=provisioned_concurrency or None,
        )
        if pc_autoscaling is not None:
            self._autoscale(pc_autoscaling)

    def _autoscale(self, scaling: RouterPcAutoscaling) -> None:
        """Target tracking keeps the alias's utilization near the target; scheduled actions move [min, max]
        ahead of known peaks. CloudWatch's ProvisionedConcurrencyUtilization is per alias (FunctionName +
        Resource), the metric the PC alarms read, so they watch whatever capacity autoscaling chose."""
        capacity = self.alias.add_auto_scaling(min_capacity=scaling.min_capacity, max_capacity=scaling.max_capacity)
        if scaling.target_utilization is not None:
            capacity.scale_on_utilization(utilization_target=scaling.target_utilization)
        for action in scaling.schedule:
            capacity.scale_on_schedule(
                action.name,
                schedule=appscaling.Schedule.expression(action.cron),
                min_capacity=action.min_capacity,
                max_capacity=action.max_capacity,
            )

    def _may_read_endpoint_sizes(self, prefix: str) -> None:
        stack = Stack.of(self)
        # A parameter's ARN is "parameter" followed by its name, whose leading "/" is the ARN's separator.
        names = f"{prefix.lstrip('/')}*"
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[stack.format_arn(service="ssm", resource="parameter", resource_name=names)],
            )
        )
        rendered = (
            f"arn:{nag_text(stack.partition)}:ssm:{nag_text(stack.region)}:{nag_text(stack.account)}:parameter/{names}"
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{rendered}]",
            "This stage's serverless endpoint sizes (String parameters, read to cost each call), one per endpoint "
            "written by its model stack: models come and go without editing the router's policy.",
        )
