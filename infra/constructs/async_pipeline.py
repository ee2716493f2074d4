"""AsyncPipeline: the result function that settles jobs from the notification queue, and the scheduled
sweeper that settles the jobs whose notification never came.

The queue's event source reports batch item failures, so one bad notification is retried alone; after the
queue's ``maxReceiveCount`` it moves to the dead-letter queue (AsyncStorage), which pages.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from functions.config.telemetry import METRICS_NAMESPACE, RESULTS_SERVICE, SWEEPER_SERVICE
from infra.constructs.async_storage import AsyncStorage
from infra.constructs.python_function import PythonFunction
from infra.constructs.stage_endpoints import grant_stage_endpoints

RESULTS_HANDLER: Final[str] = "functions.handlers.results.handler.lambda_handler"
SWEEPER_HANDLER: Final[str] = "functions.handlers.sweeper.handler.lambda_handler"
SWEEPER_TIMEOUT: Final[Duration] = Duration.minutes(5)
# The most result functions the queue may run at once (Lambda's SQS minimum is 2): a flood of notifications, a
# burst of completions or a forged one, waits in the queue instead of taking the account's concurrency from
# the router. Ten settle ten batches of up to result_batch_size notifications in parallel.
RESULT_MAX_CONCURRENCY: Final[int] = 10


class AsyncPipeline(Construct):
    """Props (keyword-only): storage, queue_visibility_timeout (the result queue's), code,
    powertools_layer_arn, environment (the async settings), result_timeout, result_batch_size, sweep_interval,
    log_retention, log_level, log_removal_policy, endpoint_name_prefix (the stage's: the sweeper reads those
    endpoints' instance counts), cost_environment (the sweeper's prices, instance types and interval:
    infra/config/costing.py ``sweeper_cost_environment``).

    Attributes: ``results`` and ``sweeper`` (PythonFunction), ``schedule`` (events.Rule).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        storage: AsyncStorage,
        queue_visibility_timeout: Duration,
        code: lambda_.Code,
        powertools_layer_arn: str,
        environment: dict[str, str],
        result_timeout: Duration,
        result_batch_size: int,
        sweep_interval: Duration,
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
        endpoint_name_prefix: str,
        cost_environment: dict[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        common = {
            "code": code,
            "powertools_layer_arn": powertools_layer_arn,
            "log_retention": log_retention,
            "log_level": log_level,
            "log_removal_policy": log_removal_policy,
        }
        self.results = PythonFunction(
            self,
            "Results",
            handler=RESULTS_HANDLER,
            description="Settles async inference jobs from SageMaker's success and error notifications",
            memory_mb=256,
            timeout=result_timeout,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": RESULTS_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            **common,  # type: ignore[arg-type]
        )
        storage.grant_settler(self.results.role, query_open_jobs=False)
        self.results.function.add_event_source(
            event_sources.SqsEventSource(
                storage.queue,
                batch_size=result_batch_size,
                report_batch_item_failures=True,
                max_concurrency=RESULT_MAX_CONCURRENCY,
            )
        )

        self.sweeper = PythonFunction(
            self,
            "Sweeper",
            handler=SWEEPER_HANDLER,
            description="Settles async jobs past their deadline whose notification never arrived",
            memory_mb=256,
            timeout=SWEEPER_TIMEOUT,
            environment={
                **environment,
                **cost_environment,
                "POWERTOOLS_SERVICE_NAME": SWEEPER_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            # One sweep at a time: two would race to settle the same overdue jobs (harmless, but wasteful).
            reserved_concurrency=1,
            **common,  # type: ignore[arg-type]
        )
        storage.grant_settler(self.sweeper.role, query_open_jobs=True)
        # DescribeEndpoint: the sweeper charges the async endpoints' running instances.
        grant_stage_endpoints(self.sweeper.role, ["sagemaker:DescribeEndpoint"], endpoint_name_prefix, who="sweeper")
        self.schedule = events.Rule(
            self,
            "SweepSchedule",
            description="Runs the async job sweeper",
            schedule=events.Schedule.rate(sweep_interval),
            targets=[targets.LambdaFunction(self.sweeper.function, retry_attempts=2)],
        )
