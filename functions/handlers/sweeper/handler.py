"""Sweeper Lambda (scheduled): settles async jobs past their deadline that no notification settled.

A lost notification must not leave a job open forever: the job is settled from the output or failure
object SageMaker wrote, or else failed with ``timeout``. Each outcome is a metric.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.adapters.async_service import async_service_from_env
from functions.config.telemetry import METRICS_NAMESPACE, OLDEST_OPEN_JOB_AGE_METRIC, SWEEPER_SERVICE

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=SWEEPER_SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SWEEPER_SERVICE)
service = async_service_from_env("sweeper")
# Jobs settled per run; the schedule comes round again for the rest.
SWEEP_LIMIT = 500


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    now = int(time.time())
    counts = service.sweep(now=now, limit=SWEEP_LIMIT)
    # Emitted every run, 0 included: a silent metric means the sweeper itself stopped, and the alarm on it
    # treats missing data as breaching.
    oldest_age = service.oldest_open_age_s(now=now)
    metrics.add_metric(name=OLDEST_OPEN_JOB_AGE_METRIC, unit=MetricUnit.Seconds, value=oldest_age)
    for outcome, count in counts.items():
        # One metric per outcome (JobsSweptTimeout, ...): "timeout" is the one that means lost work.
        metric_name = "JobsSwept" + "".join(part.capitalize() for part in outcome.split("-"))
        metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=count)
    logger.info("sweep done", extra={**counts, "oldest_open_job_age_s": oldest_age})
    return counts
