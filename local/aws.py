"""Local AWS for the async path: moto's server in-process on 127.0.0.1, and the S3 bucket, SNS topics, SQS
queue + dead-letter queue and DynamoDB tables the CDK templates create, made with plain boto3 against it.

Every client here carries fake credentials and an explicit endpoint, so nothing in this module can reach a
real AWS account whatever the shell has set.

Example:
    >>> aws = LocalAws().start()
    >>> resources = create_async_resources(aws.url, LocalAsyncResources.unique("dev"))
    >>> os.environ.update(local_environment(resources, aws.url))
    >>> aws.stop()

moto keeps its state in process-wide backends: two servers in one process share it, and ``mock_aws``
resets it when it starts. Resource names from :meth:`LocalAsyncResources.unique` keep independent users of
one process apart; nothing keeps them apart from a ``mock_aws`` reset.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Final

import boto3

from functions.config.async_contract import (
    FAILURE_PREFIX,
    IDEMPOTENCY_PARTITION_KEY,
    IDEMPOTENCY_TTL_ATTRIBUTE,
    INPUT_PREFIX,
    JOB_DEADLINE_ATTRIBUTE,
    JOB_STATUS_ATTRIBUTE,
    JOB_STATUS_INDEX,
    JOB_TABLE_PARTITION_KEY,
    JOB_TTL_ATTRIBUTE,
    OUTPUT_PREFIX,
)
from functions.config.limits import SQS_MAX_VISIBILITY_TIMEOUT_S
from local.account import FAKE_CREDENTIALS, REGION

# SQS caps MessageRetentionPeriod at 14 days; a dead-letter queue keeps failures as long as it can.
DLQ_RETENTION_S: Final[int] = 14 * 24 * 3600


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(region_name=REGION, **FAKE_CREDENTIALS)


_client_lock = threading.Lock()


@functools.cache
def aws_client(service: str, endpoint_url: str) -> Any:
    """A boto3 client for the local emulator only: explicit endpoint, fake credentials, the local region.

    Cached: a client costs ~0.1 s of service-model loading, and clients (unlike sessions) are thread-safe.
    """
    with _client_lock:  # a boto3 session must not create clients from two threads at once
        return _session().client(service, endpoint_url=endpoint_url)


class LocalAws:
    """moto's server on ``host:port`` in a background thread; port 0 picks a free one (xdist-safe)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # moto is a dev dependency: import it only when asked for

        # werkzeug logs every request at INFO; local mode and tests want their own output readable.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._started = False

    def start(self) -> LocalAws:
        self._server.start()
        self._started = True
        return self

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._started:
            self._server.stop()
            self._started = False


@dataclass(frozen=True, slots=True)
class LocalAsyncResources:
    """The names (and queue settings) of the async path's resources, as the templates would create them."""

    bucket: str = "inference-router-async"
    success_topic: str = "inference-router-async-success"
    error_topic: str = "inference-router-async-error"
    result_queue: str = "inference-router-async-results"
    dead_letter_queue: str = "inference-router-async-results-dlq"
    job_table: str = "inference-router-jobs"
    idempotency_table: str = "inference-router-idempotency"
    max_receive_count: int = 5
    # AWS wants at least 6x the consuming Lambda's timeout; local mode wants a crashed message back quickly.
    visibility_timeout_s: int = 30

    def __post_init__(self) -> None:
        if not 1 <= self.max_receive_count <= 1000:
            raise ValueError(f"max_receive_count {self.max_receive_count} must lie in [1, 1000] (SQS's range)")
        if not 0 <= self.visibility_timeout_s <= SQS_MAX_VISIBILITY_TIMEOUT_S:
            raise ValueError(
                f"visibility_timeout_s {self.visibility_timeout_s} must lie in [0, {SQS_MAX_VISIBILITY_TIMEOUT_S}]"
                " (SQS's range)"
            )

    @classmethod
    def unique(
        cls, prefix: str = "local", *, max_receive_count: int = 5, visibility_timeout_s: int = 30
    ) -> LocalAsyncResources:
        """Fresh names, so several users of one moto server (tests, xdist workers) never share a resource."""
        tag = f"{prefix}-{uuid.uuid4().hex[:8]}"
        return cls(
            bucket=f"{tag}-async",
            success_topic=f"{tag}-async-success",
            error_topic=f"{tag}-async-error",
            result_queue=f"{tag}-async-results",
            dead_letter_queue=f"{tag}-async-results-dlq",
            job_table=f"{tag}-jobs",
            idempotency_table=f"{tag}-idempotency",
            max_receive_count=max_receive_count,
            visibility_timeout_s=visibility_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class AsyncResources:
    """What :func:`create_async_resources` made: every name, ARN and URL a function or test needs."""

    bucket: str
    input_prefix: str
    output_path: str
    failure_path: str
    success_topic_arn: str
    error_topic_arn: str
    result_queue_url: str
    result_queue_arn: str
    dead_letter_queue_url: str
    dead_letter_queue_arn: str
    job_table: str
    idempotency_table: str
    max_receive_count: int


def create_async_resources(endpoint_url: str, names: LocalAsyncResources | None = None) -> AsyncResources:
    """Create the async path's resources in the emulator at ``endpoint_url``, the way the templates do."""
    names = names or LocalAsyncResources()
    s3, sns, sqs, dynamodb = (aws_client(service, endpoint_url) for service in ("s3", "sns", "sqs", "dynamodb"))

    s3.create_bucket(Bucket=names.bucket)  # us-east-1 takes no LocationConstraint

    success_topic_arn = sns.create_topic(Name=names.success_topic)["TopicArn"]
    error_topic_arn = sns.create_topic(Name=names.error_topic)["TopicArn"]

    dlq_url = sqs.create_queue(
        QueueName=names.dead_letter_queue, Attributes={"MessageRetentionPeriod": str(DLQ_RETENTION_S)}
    )["QueueUrl"]
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(names.max_receive_count)}
    queue_url = sqs.create_queue(
        QueueName=names.result_queue,
        Attributes={"RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": str(names.visibility_timeout_s)},
    )["QueueUrl"]
    queue_arn = _queue_arn(sqs, queue_url)
    # moto does not enforce queue policies; the policy is made anyway so local mode has what AWS needs.
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={"Policy": json.dumps(_topics_may_send(queue_arn, [success_topic_arn, error_topic_arn]))},
    )
    # As the templates subscribe (infra/constructs/async_storage.py): raw delivery, so the queue message is
    # SageMaker's notification itself, and a subscription dead-letter queue for what SNS cannot deliver.
    subscription = {"RawMessageDelivery": "true", "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn})}
    for topic_arn in (success_topic_arn, error_topic_arn):
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn, Attributes=subscription)

    dynamodb.create_table(
        TableName=names.job_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": JOB_TABLE_PARTITION_KEY, "AttributeType": "S"},
            {"AttributeName": JOB_STATUS_ATTRIBUTE, "AttributeType": "S"},
            {"AttributeName": JOB_DEADLINE_ATTRIBUTE, "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": JOB_TABLE_PARTITION_KEY, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": JOB_STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": JOB_STATUS_ATTRIBUTE, "KeyType": "HASH"},
                    {"AttributeName": JOB_DEADLINE_ATTRIBUTE, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    dynamodb.update_time_to_live(
        TableName=names.job_table, TimeToLiveSpecification={"Enabled": True, "AttributeName": JOB_TTL_ATTRIBUTE}
    )
    # The key schema Powertools' DynamoDBPersistenceLayer expects by default.
    dynamodb.create_table(
        TableName=names.idempotency_table,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": IDEMPOTENCY_PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": IDEMPOTENCY_PARTITION_KEY, "KeyType": "HASH"}],
    )
    dynamodb.update_time_to_live(
        TableName=names.idempotency_table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": IDEMPOTENCY_TTL_ATTRIBUTE},
    )

    return AsyncResources(
        bucket=names.bucket,
        input_prefix=INPUT_PREFIX,
        output_path=f"s3://{names.bucket}/{OUTPUT_PREFIX}",
        failure_path=f"s3://{names.bucket}/{FAILURE_PREFIX}",
        success_topic_arn=success_topic_arn,
        error_topic_arn=error_topic_arn,
        result_queue_url=queue_url,
        result_queue_arn=queue_arn,
        dead_letter_queue_url=dlq_url,
        dead_letter_queue_arn=dlq_arn,
        job_table=names.job_table,
        idempotency_table=names.idempotency_table,
        max_receive_count=names.max_receive_count,
    )


def local_environment(resources: AsyncResources, endpoint_url: str) -> dict[str, str]:
    """The environment the router, result Lambda and sweeper read, pointed at the emulator.

    botocore honours the per-service ``AWS_ENDPOINT_URL_<SERVICE>`` variables, so the functions' own
    clients reach moto without a line of local-only code.
    """
    return {
        "AWS_ENDPOINT_URL_S3": endpoint_url,
        "AWS_ENDPOINT_URL_SQS": endpoint_url,
        "AWS_ENDPOINT_URL_SNS": endpoint_url,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint_url,
        "ASYNC_BUCKET": resources.bucket,
        "JOB_TABLE": resources.job_table,
        "IDEMPOTENCY_TABLE": resources.idempotency_table,
        "RESULT_QUEUE_URL": resources.result_queue_url,
        "DEAD_LETTER_QUEUE_URL": resources.dead_letter_queue_url,
    }


def _queue_arn(sqs: Any, queue_url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _topics_may_send(queue_arn: str, topic_arns: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowAsyncNotificationTopics",
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arns}},
            }
        ],
    }
