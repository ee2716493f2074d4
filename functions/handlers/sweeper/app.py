"""The sweeper's wiring: :func:`create_handler` takes the job service and returns the scheduled handler.

A lost notification must not leave a job open forever: the job is settled from the output or failure
object SageMaker wrote, or else failed with ``timeout``. Each outcome is a metric. A result that breaks its
model's output contract fails its job, counted as the result function counts it (``OutputContractViolations``
by service, model and check). Each run also charges the async endpoints' running instances for the interval
since the last (CostUsd by model, route ``async``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from functions.config.telemetry import METRICS_NAMESPACE, OLDEST_OPEN_JOB_AGE_METRIC, SWEEPER_SERVICE
from functions.handlers.contract_violations import count_violation

if TYPE_CHECKING:
    from functions.domain.async_jobs import AsyncJobService

# Jobs settled per run; the schedule comes round again for the rest.
SWEEP_LIMIT: Final[int] = 500
SweeperHandler = Callable[[dict[str, Any], Any], dict[str, int]]


def create_handler(
    service: AsyncJobService,
    clock: Callable[[], float] = time.time,
    instance_cost: Callable[[Logger], Callable[[], dict[str, float]]] | None = None,
) -> SweeperHandler:
    """``instance_cost``: given the logger, what charges the async endpoints' instance time each run
    (functions/handlers/sweeper/instance_cost.py); None: no cost (no prices configured)."""
    logger = Logger(service=SWEEPER_SERVICE)
    charge = instance_cost(logger) if instance_cost is not None else None
    metrics = Metrics(namespace=METRICS_NAMESPACE, service=SWEEPER_SERVICE)

    @metrics.log_metrics
    @logger.inject_lambda_context
    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        now = int(clock())

        def violated(model: str, check: str) -> None:
            count_violation(SWEEPER_SERVICE, model, check)
            logger.warning(
                "job failed: its result broke the model's output contract", extra={"model": model, "check": check}
            )

        counts = service.sweep(now=now, limit=SWEEP_LIMIT, violated=violated)
        # Emitted every run, 0 included: a silent metric means the sweeper itself stopped, and the alarm on it
        # treats missing data as breaching.
        oldest_age = service.oldest_open_age_s(now=now)
        metrics.add_metric(name=OLDEST_OPEN_JOB_AGE_METRIC, unit=MetricUnit.Seconds, value=oldest_age)
        for outcome, count in counts.items():
            # One metric per outcome (JobsSweptTimeout, ...): "timeout" is the one that means lost work.
            metric_name = "JobsSwept" + "".join(part.capitalize() for part in outcome.split("-"))
            metrics.add_metric(name=metric_name, unit=MetricUnit.Count, value=count)
        costs = charge() if charge is not None else {}
        logger.info("sweep done", extra={**counts, "oldest_open_job_age_s": oldest_age, "instance_cost_usd": costs})
        return counts

    return lambda_handler
