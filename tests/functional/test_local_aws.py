"""local/aws.py: moto's server on a free port with the async path's resources, as the templates create them,
and the behaviour the async pipeline relies on (SNS → SQS delivery, redrive to the DLQ, presigned URLs)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local.aws import (
    DLQ_RETENTION_S,
    AsyncResources,
    LocalAsyncResources,
    LocalAws,
    aws_client,
    create_async_resources,
    local_environment,
)
from local.stack import LOCAL_AWS_ENVIRONMENT


@pytest.fixture(scope="module")
def resources(aws: LocalAws) -> AsyncResources:
    return create_async_resources(aws.url, LocalAsyncResources.unique("aws", max_receive_count=2))


@pytest.fixture
def sqs(aws: LocalAws) -> Any:
    return aws_client("sqs", aws.url)


def drain(sqs: Any, queue_url: str) -> None:
    while messages := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_local_aws_binds_the_free_port_the_os_picked(aws: LocalAws) -> None:
    # Port 0 keeps parallel test workers apart; the URL must carry the port actually bound.
    host, port = aws.url.removeprefix("http://").split(":")
    assert host == "127.0.0.1"
    assert int(port) > 0
    assert aws_client("sts", aws.url).get_caller_identity()["Account"] == "123456789012"  # it answers


def test_result_queue_redrives_to_a_dlq_that_keeps_messages_14_days(sqs: Any, resources: AsyncResources) -> None:
    queue = sqs.get_queue_attributes(QueueUrl=resources.result_queue_url, AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=resources.dead_letter_queue_url, AttributeNames=["All"])["Attributes"]
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": resources.dead_letter_queue_arn,
        "maxReceiveCount": 2,
    }
    assert int(dlq["MessageRetentionPeriod"]) == DLQ_RETENTION_S == 1_209_600
    statement = json.loads(queue["Policy"])["Statement"][0]
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert set(statement["Condition"]["ArnEquals"]["aws:SourceArn"]) == {
        resources.success_topic_arn,
        resources.error_topic_arn,
    }


def test_both_topics_subscribe_the_result_queue(aws: LocalAws, resources: AsyncResources) -> None:
    sns = aws_client("sns", aws.url)
    for topic_arn in (resources.success_topic_arn, resources.error_topic_arn):
        subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("sqs", resources.result_queue_arn)]


def test_subscriptions_use_raw_delivery_and_the_dlq_as_the_templates_do(
    aws: LocalAws, resources: AsyncResources
) -> None:
    # infra/constructs/async_storage.py: SqsSubscription(raw_message_delivery=True, dead_letter_queue=...).
    sns = aws_client("sns", aws.url)
    for topic_arn in (resources.success_topic_arn, resources.error_topic_arn):
        (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
        attributes = sns.get_subscription_attributes(SubscriptionArn=subscription["SubscriptionArn"])["Attributes"]
        assert attributes["RawMessageDelivery"] == "true"
        assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": resources.dead_letter_queue_arn}


def test_job_table_has_the_status_deadline_index_and_ttl(aws: LocalAws, resources: AsyncResources) -> None:
    dynamodb = aws_client("dynamodb", aws.url)
    table = dynamodb.describe_table(TableName=resources.job_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types == {"job_id": "S", "job_status": "S", "deadline": "N"}
    (index,) = table["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_status"
    assert index["KeySchema"] == [
        {"AttributeName": "job_status", "KeyType": "HASH"},
        {"AttributeName": "deadline", "KeyType": "RANGE"},
    ]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    ttl = dynamodb.describe_time_to_live(TableName=resources.job_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}


def test_idempotency_table_has_powertools_key_and_ttl(aws: LocalAws, resources: AsyncResources) -> None:
    dynamodb = aws_client("dynamodb", aws.url)
    table = dynamodb.describe_table(TableName=resources.idempotency_table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    ttl = dynamodb.describe_time_to_live(TableName=resources.idempotency_table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expiration"}


def test_sns_publish_reaches_the_queue_as_the_raw_message(aws: LocalAws, sqs: Any, resources: AsyncResources) -> None:
    sns = aws_client("sns", aws.url)
    sns.publish(TopicArn=resources.error_topic_arn, Message=json.dumps({"inferenceId": "j-1"}))
    messages = sqs.receive_message(QueueUrl=resources.result_queue_url, MaxNumberOfMessages=10)["Messages"]
    try:
        (message,) = messages
        assert json.loads(message["Body"]) == {"inferenceId": "j-1"}  # no SNS envelope around it
    finally:
        drain(sqs, resources.result_queue_url)


def test_message_received_past_max_receive_count_moves_to_dlq(sqs: Any, resources: AsyncResources) -> None:
    sqs.send_message(QueueUrl=resources.result_queue_url, MessageBody="poison")
    counts = []
    for _ in range(resources.max_receive_count):
        # VisibilityTimeout=0: the handler "crashed", so the message is visible again at once.
        (message,) = sqs.receive_message(
            QueueUrl=resources.result_queue_url, VisibilityTimeout=0, AttributeNames=["ApproximateReceiveCount"]
        )["Messages"]
        counts.append(int(message["Attributes"]["ApproximateReceiveCount"]))
    assert counts == [1, 2]
    # moto applies redrive on the receive that would exceed maxReceiveCount, as SQS does.
    assert sqs.receive_message(QueueUrl=resources.result_queue_url, VisibilityTimeout=0).get("Messages") is None
    (dead,) = sqs.receive_message(QueueUrl=resources.dead_letter_queue_url)["Messages"]
    assert dead["Body"] == "poison"
    sqs.delete_message(QueueUrl=resources.dead_letter_queue_url, ReceiptHandle=dead["ReceiptHandle"])


@pytest.mark.parametrize("signature_version", [None, "s3v4"])
def test_presigned_url_returns_the_object_over_http(
    aws: LocalAws, resources: AsyncResources, signature_version: str | None
) -> None:
    s3 = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local"
    ).client("s3", endpoint_url=aws.url, config=Config(signature_version=signature_version))
    s3.put_object(Bucket=resources.bucket, Key="output/presigned.out", Body=b'{"outputs":[]}')
    url = s3.generate_presigned_url(
        "get_object", Params={"Bucket": resources.bucket, "Key": "output/presigned.out"}, ExpiresIn=60
    )
    assert url.startswith(aws.url)
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.read() == b'{"outputs":[]}'


def test_local_environment_points_plain_boto3_clients_at_the_emulator(
    aws: LocalAws, resources: AsyncResources, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = local_environment(resources, aws.url)
    assert environment["ASYNC_BUCKET"] == resources.bucket
    assert environment["RESULT_QUEUE_URL"] == resources.result_queue_url
    assert environment["DEAD_LETTER_QUEUE_URL"] == resources.dead_letter_queue_url
    for name, value in {**LOCAL_AWS_ENVIRONMENT, **environment}.items():
        monkeypatch.setenv(name, value)
    # No endpoint_url: botocore must find the emulator through AWS_ENDPOINT_URL_<SERVICE> alone.
    assert resources.bucket in [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]]
    assert resources.result_queue_url in boto3.client("sqs").list_queues()["QueueUrls"]
    assert resources.success_topic_arn in [t["TopicArn"] for t in boto3.client("sns").list_topics()["Topics"]]
    assert environment["JOB_TABLE"] in boto3.client("dynamodb").list_tables()["TableNames"]


@pytest.mark.parametrize(("field", "value"), [("max_receive_count", 0), ("visibility_timeout_s", -1)])
def test_resource_settings_outside_sqs_ranges_are_refused(field: str, value: int) -> None:
    with pytest.raises(ValueError, match=field):
        LocalAsyncResources(**{field: value})


def test_unique_names_never_collide() -> None:
    first, second = LocalAsyncResources.unique("x"), LocalAsyncResources.unique("x")
    assert first.bucket != second.bucket
    assert first.job_table != second.job_table
