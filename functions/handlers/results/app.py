"""The result function's wiring: :func:`create_handler` takes the job service and returns the SQS handler.

Batches come with ``ReportBatchItemFailures``: a record that fails is reported alone and comes back after
the queue's visibility timeout; after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue.
A duplicate notification settles nothing (the job table's conditional write refuses it) and succeeds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from functions.config.telemetry import METRICS_NAMESPACE, RESULTS_SERVICE
from functions.domain.job_records import parse_notification

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

    from functions.domain.job_records import AsyncOutcome

ResultsHandler = Callable[[dict[str, Any], Any], "PartialItemFailureResponse"]


class JobSettler(Protocol):
    """What the result function needs of the job service (functions/domain/async_jobs.py)."""

    def settle(self, outcome: AsyncOutcome) -> bool: ...


def create_handler(service: JobSettler) -> ResultsHandler:
    logger = Logger(service=RESULTS_SERVICE)
    metrics = Metrics(namespace=METRICS_NAMESPACE, service=RESULTS_SERVICE)
    processor = BatchProcessor(event_type=EventType.SQS)

    def settle_record(record: SQSRecord) -> None:
        outcome = parse_notification(record.body)
        settled = service.settle(outcome)
        if settled:
            name = "JobsSucceeded" if outcome.succeeded else "JobsFailed"
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)
        else:
            metrics.add_metric(name="DuplicateNotifications", unit=MetricUnit.Count, value=1)
        logger.info(
            "job settled" if settled else "duplicate notification ignored",
            extra={"job_id": outcome.job_id, "succeeded": outcome.succeeded, "message_id": record.message_id},
        )

    @metrics.log_metrics
    @logger.inject_lambda_context
    def lambda_handler(event: dict[str, Any], context: Any) -> PartialItemFailureResponse:
        return process_partial_response(event=event, record_handler=settle_record, processor=processor, context=context)

    return lambda_handler
