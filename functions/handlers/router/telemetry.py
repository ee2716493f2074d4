"""What the router logs and counts besides its answers: degraded answers, circuit changes, submit anomalies,
endpoint status lookups that failed.

A degraded answer is counted in its request's own metrics document (``request_metrics.py``); a circuit change
and a submit anomaly are each one EMF line of their own, in the namespace the alarms read
(``functions.config.telemetry``), through Powertools' single_metric.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from functions.config.telemetry import (
    CHECK_DIMENSION,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    OUTPUT_CONTRACT_VIOLATIONS_METRIC,
    ROUTER_SERVICE,
    SERVICE_DIMENSION,
)

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger

    from functions.domain.outcomes import Degraded, SpilledToAsync
    from functions.handlers.router.request_metrics import RequestMetrics


def count(name: str, **dimensions: str) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as metric:
        for dimension, value in dimensions.items():
            metric.add_dimension(name=dimension, value=value)


def degraded_header(outcome: Degraded | SpilledToAsync) -> str:
    """The ``X-Inference-Degraded`` value: "<cause>; <answered-by>", e.g. "circuit-open; static-fallback"."""
    return f"{outcome.cause}; {outcome.answered_by}"


def count_degraded(logger: Logger, metrics: RequestMetrics, model: str, outcome: Degraded | SpilledToAsync) -> None:
    """A metric per degraded answer (``DegradedAnswers``, in the request's own document), by model, how it was
    answered (``reason``: static-fallback, last-good, spilled-async) and why the endpoint could not (``cause``:
    circuit-open, deadline, throttled...). Both sets are closed enums, so the dimensions stay bounded."""
    metrics.degraded(str(outcome.answered_by), str(outcome.cause))
    logger.warning("degraded answer", extra={"model": model, "why": degraded_header(outcome)})


class ContractViolations:
    """An endpoint answer outside its model's output contract (functions/domain/output_contract.py): logged and
    counted (``OutputContractViolations`` by service, model and check), whether a fallback answered or a 502 did.
    Its own EMF line, as rare as the breach: the request's document and its cost stay as they were."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def __call__(self, model: str, check: str) -> None:
        dimensions = {SERVICE_DIMENSION: ROUTER_SERVICE, MODEL_DIMENSION: model, CHECK_DIMENSION: check}
        count(OUTPUT_CONTRACT_VIOLATIONS_METRIC, **dimensions)
        self.logger.warning("answer outside the output contract", extra={"model": model, "check": check})


class BreakerLog:
    """Every circuit state change is logged and counted (BreakerTransitions by endpoint and new state)."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def __call__(self, endpoint: str, old: str, new: str, why: str) -> None:
        count("BreakerTransitions", endpoint=endpoint, state=str(new))
        self.logger.warning(
            "circuit breaker changed state", extra={"endpoint": endpoint, "from": str(old), "to": str(new), "why": why}
        )


class StatusLookupFailures:
    """A DescribeEndpoint that failed (throttled, denied, unreachable): logged, so a readiness resting on the
    last known status, or on the circuit alone, says why in the log."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def __call__(self, endpoint: str, error: Exception) -> None:
        self.logger.warning("endpoint status unavailable", extra={"endpoint": endpoint, "why": str(error)})


class SubmitAnomalies:
    """What a submit reports besides its answer (functions/domain/async_jobs.py ``SubmitEvents``): logged, and
    the one that needs a look (the endpoint has a job the table does not show as queued) counted."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger

    def cleanup_failed(self, job_id: str, what: str, error: Exception) -> None:
        self.logger.warning(
            "a failed submit left something behind", extra={"job_id": job_id, "what": what, "why": repr(error)}
        )

    def queued_unrecorded(self, job_id: str, error: Exception, *, marker: str | None) -> None:
        count("JobsQueuedUnrecorded", marker="written" if marker else "missing")
        self.logger.error(
            "the endpoint accepted the job but the job table was not updated; answered 202 anyway",
            extra={"job_id": job_id, "why": repr(error), "accepted_marker": marker},
        )
