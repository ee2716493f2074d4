"""ShadowWorker: the function that replays the router's sampled requests against each model's shadow version,
fed by a CloudWatch Logs subscription filter on the router's log group.

The router writes one ``{"shadow_request": {...}}`` line per sampled request to its log; the filter delivers
only those lines, batched, to the worker (functions/handlers/shadow/), which calls the shadow's serverless
endpoint and counts the agreement. Nothing here pages: a shadow's failures are metrics on the model's dashboard.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from constructs import Construct

from functions.config.telemetry import METRICS_NAMESPACE, SHADOW_LINE_KEY, SHADOW_SERVICE
from infra.constructs.failure_queue import failure_queue
from infra.constructs.python_function import PythonFunction
from infra.constructs.stage_endpoints import grant_stage_endpoints

HANDLER: Final[str] = "functions.handlers.shadow.handler.lambda_handler"
# How long the shadow's endpoint may take per line before it counts as an error (SHADOW_TIMEOUT_MS).
SHADOW_TIMEOUT_MS: Final[int] = 10_000
# A batch replays its lines one after another; five minutes is thirty lines at the per-line timeout.
FUNCTION_TIMEOUT: Final[Duration] = Duration.minutes(5)
# The most workers at once: a burst of shadow traffic waits in Lambda's async queue instead of taking the
# account's concurrency from the router. What waits longer than MAX_EVENT_AGE goes to the failure queue.
MAX_CONCURRENCY: Final[int] = 5
MAX_EVENT_AGE: Final[Duration] = Duration.hours(1)
FAILURE_RETENTION: Final[Duration] = Duration.days(4)
# The subscription delivers only the router's shadow lines (a JSON pattern: the field exists), never its EMF
# documents or application logs.
FILTER_PATTERN: Final[logs.IFilterPattern] = logs.FilterPattern.exists(f"$.{SHADOW_LINE_KEY}.model")


class ShadowWorker(Construct):
    """Props (keyword-only): router_log_group (the router function's), code, powertools_layer_arn,
    endpoint_name_prefix (the stage's: the worker may invoke only those endpoints), log_retention, log_level,
    log_removal_policy.

    Attributes: ``worker`` (PythonFunction), ``failures`` (sqs.Queue), ``subscription`` (logs.SubscriptionFilter).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        router_log_group: logs.ILogGroup,
        code: lambda_.Code,
        powertools_layer_arn: str,
        endpoint_name_prefix: str,
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.worker = PythonFunction(
            self,
            "Worker",
            handler=HANDLER,
            description="Replays the router's sampled requests against shadow model versions and counts agreement",
            code=code,
            powertools_layer_arn=powertools_layer_arn,
            memory_mb=256,
            timeout=FUNCTION_TIMEOUT,
            environment={
                "ENDPOINT_NAME_PREFIX": endpoint_name_prefix,
                "SHADOW_TIMEOUT_MS": str(SHADOW_TIMEOUT_MS),
                "POWERTOOLS_SERVICE_NAME": SHADOW_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            log_retention=log_retention,
            log_level=log_level,
            log_removal_policy=log_removal_policy,
            reserved_concurrency=MAX_CONCURRENCY,
        )
        self.failures = failure_queue(
            self, retention=FAILURE_RETENTION, invoked_by="the shadow worker's asynchronous invocations"
        )
        # CloudWatch Logs invokes the function asynchronously. The handler counts each line's failure and never
        # raises for it, so a function error is a timeout or a malformed event: a retry would replay (and count)
        # every line of the batch again, so none is made and the event goes to the failure queue for a look.
        self.worker.function.configure_async_invoke(
            retry_attempts=0,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.failures),
        )
        grant_stage_endpoints(self.worker.role, ["sagemaker:InvokeEndpoint"], endpoint_name_prefix, who="shadow worker")
        # A log group takes at most two subscription filters (CloudWatch Logs quotas): this is one; the request
        # capture of the router's log group will take the other.
        self.subscription = logs.SubscriptionFilter(
            self,
            "RouterShadowLines",
            log_group=router_log_group,
            destination=log_destinations.LambdaDestination(self.worker.function),
            filter_pattern=FILTER_PATTERN,
        )
