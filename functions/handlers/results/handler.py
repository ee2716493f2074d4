"""Result Lambda: settles async jobs from SageMaker's success and error notifications (SNS -> SQS).

Batches come with ``ReportBatchItemFailures``: a record that fails is reported alone and comes back after
the queue's visibility timeout; after ``maxReceiveCount`` receives SQS moves it to the dead-letter queue.
A duplicate notification settles nothing (the job table's conditional write refuses it) and succeeds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

from functions.adapters.async_service import async_service_from_env
from functions.config.telemetry import METRICS_NAMESPACE, RESULTS_SERVICE
from functions.domain.job_records import parse_notification

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service=RESULTS_SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=RESULTS_SERVICE)
service = async_service_from_env("result handler")
processor = BatchProcessor(event_type=EventType.SQS)


def settle_record(record: SQSRecord) -> None:
    outcome = parse_notification(record.body)
    settled = service.settle(outcome)
    if settled:
        metrics.add_metric(name="JobsSucceeded" if outcome.succeeded else "JobsFailed", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="DuplicateNotifications", unit=MetricUnit.Count, value=1)
    logger.info(
        "job settled" if settled else "duplicate notification ignored",
        extra={"job_id": outcome.job_id, "succeeded": outcome.succeeded, "message_id": record.message_id},
    )


@metrics.log_metrics
@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=settle_record, processor=processor, context=context)
