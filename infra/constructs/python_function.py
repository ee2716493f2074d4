"""PythonFunction: one of this app's Lambda functions, built the same way every time.

Graviton, the newest Python runtime, code from the repo's ``functions`` package without Docker, Powertools
from the AWS-managed layer, JSON logs into a log group of its own, X-Ray, and a role of its own holding only
what the function's construct grants it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from aws_cdk import Duration, IgnoreMode, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.guardrails import acknowledge

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
RUNTIME: Final[lambda_.Runtime] = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE: Final[lambda_.Architecture] = lambda_.Architecture.ARM_64
# An allow-list over the repo root in .gitignore syntax (IgnoreMode.GIT, later lines win): everything out, then
# functions/ back in as its directories, .py and .json files only; dotfiles and dot-directories anywhere stay out
# even there, so a functions/.env or .npmrc in a working tree can never ship.
ASSET_EXCLUDES: Final[tuple[str, ...]] = (
    "*",
    "!functions/",
    "!functions/**/",
    "!functions/**/*.py",
    "!functions/**/*.json",
    ".*",
    "__pycache__/",
)
LOG_LEVELS: Final[dict[str, lambda_.ApplicationLogLevel]] = {
    "DEBUG": lambda_.ApplicationLogLevel.DEBUG,
    "INFO": lambda_.ApplicationLogLevel.INFO,
    "WARNING": lambda_.ApplicationLogLevel.WARN,
    "ERROR": lambda_.ApplicationLogLevel.ERROR,
}


def functions_code(repo_root: Path = REPO_ROOT) -> lambda_.Code:
    """The ``functions`` package, staged by copying (never Docker)."""
    return lambda_.Code.from_asset(str(repo_root), exclude=list(ASSET_EXCLUDES), ignore_mode=IgnoreMode.GIT)


class PythonFunction(Construct):
    """Attributes: ``function``, ``role``, ``log_group``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        description: str,
        code: lambda_.Code,
        powertools_layer_arn: str,
        memory_mb: int,
        timeout: Duration,
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.log_group = logs.LogGroup(self, "LogGroup", retention=log_retention, removal_policy=log_removal_policy)
        # A role of its own instead of AWSLambdaBasicExecutionRole, whose logs:* reaches every log group.
        self.role = iam.Role(
            self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"), description=description
        )
        self.log_group.grant_write(self.role)
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=code,
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn)],
            memory_size=memory_mb,
            timeout=timeout,
            role=self.role,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=LOG_LEVELS[log_level],
            # INFO keeps Lambda's platform.report record per invocation: init duration (cold starts), billed
            # duration and max memory used, which the runbooks and cost figures read.
            system_log_level_v2=lambda_.SystemLogLevel.INFO,
            environment={**environment, "POWERTOOLS_LOG_LEVEL": log_level},
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords (added by tracing=ACTIVE) have no resource-level "
            "permissions; every other statement names exact ARNs or the function's own prefixes.",
        )
