"""AsyncStorage: where async inference keeps its inputs, outputs, notifications, dead letters and jobs.

Layout of the bucket (the router and the result handler of the next issue follow it):
``input/<endpoint>/<job id>`` (written by the router), ``output/<endpoint>/`` and ``failure/<endpoint>/``
(written by SageMaker). SageMaker publishes to the success and error topics; both feed one SQS queue that the
result handler drains, and a message it fails ``max_receive_count`` times moves to the dead-letter queue,
which pages (a Lambda DLQ only sees asynchronous invocations, and API Gateway calls the router synchronously).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.config.async_contract import (
    ACCEPTED_MARKER_SUFFIX,
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
from infra.guardrails import acknowledge, resource_token

# Reading and writing items of a table under a customer-managed key, and S3 objects under it, uses these.
TABLE_AND_OBJECT_KEY_USE = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
# SQS keeps a message at most 14 days: the longest window on-call gets to inspect and redrive a dead letter.
DEAD_LETTER_RETENTION = Duration.days(14)


class AsyncStorage(Construct):
    """Bucket, topics, queue + dead-letter queue and job table for async inference, all under one CMK.

    Props (keyword-only):
        object_expiry_days: days before input/output/failure objects expire (1-3650).
        access_log_expiry_days: days the access-log bucket keeps logs (1-3650).
        queue_visibility_timeout: how long a received notification stays hidden; must cover the result handler.
        max_receive_count: receives before a notification moves to the dead-letter queue (1-1000).
        removal_policy: for the bucket, table and key; RETAIN in production.

    Attributes: ``key``, ``bucket``, ``access_log_bucket``, ``success_topic``, ``error_topic``, ``queue``,
    ``dead_letter_queue``, ``job_table``, ``idempotency_table``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        object_expiry_days: int,
        access_log_expiry_days: int,
        queue_visibility_timeout: Duration,
        max_receive_count: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        self.key = kms.Key(
            self,
            "Key",
            description="Async inference data: S3 objects, SNS notifications, SQS queues, job table",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )

        # S3 server access logging can only write to a bucket with SSE-S3, not SSE-KMS.
        self.access_log_bucket = s3.Bucket(
            self,
            "AccessLogBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(id="ExpireAccessLogs", expiration=Duration.days(access_log_expiry_days))],
            removal_policy=removal_policy,
        )
        acknowledge(
            self.access_log_bucket,
            "AwsSolutions-S1",
            "This is the access-log bucket itself; logging its own access would log the logging.",
        )

        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_log_bucket,
            server_access_logs_prefix="async-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireAsyncObjects",
                    expiration=Duration.days(object_expiry_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )

        # Named, so that the key policy can name them by ARN: a reference to the topics' own ARNs would make
        # the key depend on the topics that are encrypted with it (a cycle CloudFormation refuses).
        stack = Stack.of(self)
        topic_names = {kind: f"{stack.stack_name}-async-{kind}" for kind in ("success", "error")}
        self._topic_arns = [stack.format_arn(service="sns", resource=name) for name in topic_names.values()]
        self.success_topic = sns.Topic(
            self, "SuccessTopic", topic_name=topic_names["success"], master_key=self.key, enforce_ssl=True
        )
        self.error_topic = sns.Topic(
            self, "ErrorTopic", topic_name=topic_names["error"], master_key=self.key, enforce_ssl=True
        )

        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            retention_period=DEAD_LETTER_RETENTION,
        )
        self.queue = sqs.Queue(
            self,
            "ResultQueue",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=self.key,
            enforce_ssl=True,
            visibility_timeout=queue_visibility_timeout,
            retention_period=DEAD_LETTER_RETENTION,
            dead_letter_queue=sqs.DeadLetterQueue(max_receive_count=max_receive_count, queue=self.dead_letter_queue),
        )
        self._subscribe_queue_to_topics()

        self.job_table = dynamodb.Table(
            self,
            "JobTable",
            partition_key=dynamodb.Attribute(name=JOB_TABLE_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=JOB_TTL_ATTRIBUTE,
            deletion_protection=removal_policy == RemovalPolicy.RETAIN,
            removal_policy=removal_policy,
        )
        self.job_table.add_global_secondary_index(
            index_name=JOB_STATUS_INDEX,
            partition_key=dynamodb.Attribute(name=JOB_STATUS_ATTRIBUTE, type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name=JOB_DEADLINE_ATTRIBUTE, type=dynamodb.AttributeType.NUMBER),
            projection_type=dynamodb.ProjectionType.ALL,
        )
        # Powertools idempotency records: a retried submit with the same Idempotency-Key returns the same job.
        self.idempotency_table = dynamodb.Table(
            self,
            "IdempotencyTable",
            partition_key=dynamodb.Attribute(name=IDEMPOTENCY_PARTITION_KEY, type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
            removal_policy=removal_policy,
        )

    @property
    def topic_arns(self) -> list[str]:
        """The success and error topics' ARNs, built from their names (no reference to the topics)."""
        return list(self._topic_arns)

    def _subscribe_queue_to_topics(self) -> None:
        """Both topics deliver to the result queue, raw (the queue message is SageMaker's notification itself,
        with its invocationStatus); a message SNS cannot deliver lands in the dead-letter queue.

        Written out instead of CDK's SqsSubscription, whose key-policy grant lets SNS use the key on behalf of
        any topic: here SNS may use it only for these two topics in this account (the confused-deputy guard).
        """
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowResultTopicsToDeliver",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "ArnEquals": {"aws:SourceArn": self.topic_arns},
                    "StringEquals": {"aws:SourceAccount": Stack.of(self).account},
                },
            )
        )
        self.queue.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowResultTopicsToSend",
                principals=[iam.ServicePrincipal("sns.amazonaws.com")],
                actions=["sqs:SendMessage"],
                resources=[self.queue.queue_arn],
                conditions={"ArnEquals": {"aws:SourceArn": self.topic_arns}},
            )
        )
        for name, topic in (("Success", self.success_topic), ("Error", self.error_topic)):
            subscription = sns.Subscription(
                self,
                f"{name}ToResultQueue",
                topic=topic,
                endpoint=self.queue.queue_arn,
                protocol=sns.SubscriptionProtocol.SQS,
                raw_message_delivery=True,
                dead_letter_queue=self.dead_letter_queue,
            )
            # SNS checks it may send when the subscription is made: the queue policy must exist first.
            subscription.node.add_dependency(self.queue)

    def function_environment(
        self, *, invocation_timeout_s: int, request_ttl_s: int, result_inline_max_bytes: int
    ) -> dict[str, str]:
        """What the router, result and sweeper functions read (functions/config/async_settings.py)."""
        return {
            "ASYNC_BUCKET": self.bucket.bucket_name,
            "JOB_TABLE": self.job_table.table_name,
            "IDEMPOTENCY_TABLE": self.idempotency_table.table_name,
            "ASYNC_INVOCATION_TIMEOUT_S": str(invocation_timeout_s),
            "ASYNC_REQUEST_TTL_S": str(request_ttl_s),
            "JOB_RESULT_INLINE_MAX_BYTES": str(result_inline_max_bytes),
        }

    def _objects(self, role: iam.IRole, actions: list[str], prefixes: list[str], why: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=actions, resources=[self.bucket.arn_for_objects(f"{p}*") for p in prefixes])
        )
        bucket_arn = resource_token(self.bucket, "Arn")
        for prefix in prefixes:
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]", why)

    def _may_list(self, role: iam.IRole) -> None:
        """ListBucket, so that a missing object is S3's 404 and not a 403 like a denial (S3 HeadObject docs):
        an expired result and an output not written yet must be told apart from a broken grant. It lists keys
        (job ids under endpoint names), never contents."""
        role.add_to_principal_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[self.bucket.bucket_arn]))

    def grant_router(self, role: iam.IRole) -> None:
        """Submit: write and (on a failed submit) delete inputs, record jobs; status: read and presign outputs."""
        self._may_list(role)
        self._objects(
            role,
            ["s3:PutObject", "s3:DeleteObject"],
            [INPUT_PREFIX],
            "The router writes each job's input under input/<endpoint>/<job id>; job ids exist only at run time.",
        )
        self._objects(
            role,
            ["s3:GetObject"],
            [OUTPUT_PREFIX],
            "GET /v2/jobs/{id} reads or presigns the job's output object, named by SageMaker at run time.",
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"],
                resources=[self.job_table.table_arn, self.idempotency_table.table_arn],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=TABLE_AND_OBJECT_KEY_USE, resources=[self.key.key_arn])
        )

    def grant_settler(self, role: iam.IRole, *, query_open_jobs: bool) -> None:
        """The result handler and the sweeper: read results and failures, settle jobs (the sweeper also queries,
        and reads the marker a submit leaves when the endpoint took a job the table could not be told of)."""
        self._may_list(role)
        self._objects(
            role,
            ["s3:GetObject"],
            [OUTPUT_PREFIX, FAILURE_PREFIX],
            "Settling reads the output or failure object SageMaker named at run time under these prefixes.",
        )
        actions = ["dynamodb:GetItem", "dynamodb:UpdateItem"]
        resources = [self.job_table.table_arn]
        if query_open_jobs:
            marker = f"{INPUT_PREFIX}*{ACCEPTED_MARKER_SUFFIX}"
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["s3:GetObject"], resources=[self.bucket.arn_for_objects(marker)])
            )
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::{resource_token(self.bucket, 'Arn')}/{marker}]",
                "The sweeper reads only the accepted-job markers (never the inputs); job ids exist only at run time.",
            )
            actions.append("dynamodb:Query")
            resources.append(f"{self.job_table.table_arn}/index/{JOB_STATUS_INDEX}")
        role.add_to_principal_policy(iam.PolicyStatement(actions=actions, resources=resources))
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=TABLE_AND_OBJECT_KEY_USE, resources=[self.key.key_arn])
        )
