"""The result function's wiring: :func:`create_handler` takes the job service and returns the SQS handler.

Batches come with ``ReportBatchItemFailures``: a record that fails is reported alone and comes back after
the queue's visibility timeout; after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue.
A duplicate notification settles nothing (the job table's conditional write refuses it) and succeeds. So does
one whose locations are not the job's (a forgery, or a bug): counted (``MismatchedNotifications``) and logged
with its values clipped, and the job stays open for the real notification. A result that breaks its model's
output contract fails its job with the breach as the job's error (functions/domain/result_contract.py): counted
(``JobsFailed``, and ``OutputContractViolations`` by service, model and check in an EMF line of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from functions.config.telemetry import METRICS_NAMESPACE, MISMATCHED_NOTIFICATIONS_METRIC, RESULTS_SERVICE
from functions.domain.job_records import Settlement, parse_notification
from functions.handlers.contract_violations import count_violation

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from functions.domain.job_records import AsyncOutcome, Job

ResultsHandler = Callable[[dict[str, Any], Any], "PartialItemFailureResponse"]
# A notification's values are anyone's text when it is forged: logged clipped to this many characters.
LOGGED_VALUE_CHARS: Final[int] = 200


class JobSettler(Protocol):
    """What the result function needs of the job service (functions/domain/async_jobs.py)."""

    def settle(
        self,
        outcome: AsyncOutcome,
        *,
        seen: Callable[[Job], None] | None = None,
        violated: Callable[[str, str], None] | None = None,
    ) -> Settlement: ...


def create_handler(service: JobSettler) -> ResultsHandler:
    logger = Logger(service=RESULTS_SERVICE)
    metrics = Metrics(namespace=METRICS_NAMESPACE, service=RESULTS_SERVICE)
    processor = BatchProcessor(event_type=EventType.SQS)

    def settle_record(record: SQSRecord) -> None:
        # Each record's lines carry the correlation id of the API request that submitted its job (the
        # router's logs carry the same key), once the job is read; none before, not the last record's.
        logger.set_correlation_id(None)
        outcome = parse_notification(record.body)
        breach: dict[str, str] = {}

        def violated(model: str, check: str) -> None:
            count_violation(RESULTS_SERVICE, model, check)
            breach.update(model=model, check=check)

        settlement = service.settle(
            outcome, seen=lambda job: logger.set_correlation_id(job.correlation_id), violated=violated
        )
        details = {"job_id": outcome.job_id, "succeeded": outcome.succeeded, "message_id": record.message_id}
        if settlement is Settlement.REFUSED:
            metrics.add_metric(name="JobsFailed", unit=MetricUnit.Count, value=1)
            logger.warning("job failed: its result broke the model's output contract", extra={**details, **breach})
        elif settlement is Settlement.SETTLED:
            name = "JobsSucceeded" if outcome.succeeded else "JobsFailed"
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
            logger.info("job settled", extra=details)
        elif settlement is Settlement.DUPLICATE:
            metrics.add_metric(name="DuplicateNotifications", unit=MetricUnit.Count, value=1)
            logger.info("duplicate notification ignored", extra=details)
        else:
            metrics.add_metric(name=MISMATCHED_NOTIFICATIONS_METRIC, unit=MetricUnit.Count, value=1)
            logger.warning(
                "notification ignored: its locations are not the ones recorded for the job",
                extra={
                    **details,
                    "output_location": clipped(outcome.output_location),
                    "failure_location": clipped(outcome.failure_location),
                    "failure_reason": clipped(outcome.reason),
                },
            )

    @metrics.log_metrics
    @logger.inject_lambda_context
    def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        return process_partial_response(event=event, record_handler=settle_record, processor=processor, context=context)

    return lambda_handler


def clipped(value: object) -> str | None:
    """``value`` as text of at most :data:`LOGGED_VALUE_CHARS` characters, marked when cut."""
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= LOGGED_VALUE_CHARS else f"{text[:LOGGED_VALUE_CHARS]}... ({len(text)} chars)"
