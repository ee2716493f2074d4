"""CaptureDelivery: the router's capture lines, from its log group to the capture bucket, with no call on the
request path.

The router writes one ``{"capture": 1, ...}`` JSON line per sampled request (functions/handlers/router/
capture.py). A subscription filter on its log group passes those lines to a Firehose stream, which gunzips
CloudWatch Logs' batches, keeps each log event's message, partitions by the record's model and UTC day (JQ) and
writes gzip JSON lines under ``capture/model=<model>/date=<YYYY-MM-DD>/`` of the capture bucket, where the drift
job (infra/constructs/drift.py) reads them and writes its reports.

The stream is the L1 ``CfnDeliveryStream`` with a role of its own: the L2 S3 destination grants the stream's
role every object of the bucket and wildcard KMS actions, which the capture bucket (request data) must not.

The bucket and its key get the async bucket's data perimeter (infra/constructs/data_perimeter.py) once the drift
job's role exists (``enforce_perimeter``): only Firehose writes captures, only the drift job reads them and
writes reports, and nobody else (an administrator included) touches an object, bar the break-glass role.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.config.drift_contract import CAPTURE_PREFIX, DRIFT_REPORT_PREFIX
from functions.config.telemetry import CAPTURE_LINE_KEY
from infra.constructs.data_perimeter import BUCKET_DATA_ACTIONS, KEY_READ_ACTIONS, perimeter_deny
from infra.guardrails import acknowledge, resource_token

# Only the capture lines: the router's EMF documents, shadow lines and application logs never leave.
FILTER_PATTERN: Final[str] = f"{{ $.{CAPTURE_LINE_KEY} = 1 }}"
# Firehose's JQ 1.6 engine: the record's model and its UTC day (strftime on whole epoch seconds), the same day
# local/capture.py files a local capture under.
PARTITION_QUERY: Final[str] = '{model: .model, date: (.timestamp | floor | strftime("%Y-%m-%d"))}'
DATA_PREFIX: Final[str] = (
    f"{CAPTURE_PREFIX}model=!{{partitionKeyFromQuery:model}}/date=!{{partitionKeyFromQuery:date}}/"
)
# A record Firehose could not process, partition or deliver (a line without a model): kept apart for a look,
# never where the drift job reads.
ERROR_ROOT: Final[str] = "capture-errors/"
ERROR_PREFIX: Final[str] = f"{ERROR_ROOT}!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/"
# Dynamic partitioning needs a buffer of at least 64 MiB (Firehose docs); the longest interval, 900 s, makes the
# fewest objects, and the drift job reads whole days.
BUFFER_SIZE_MB: Final[int] = 64
BUFFER_INTERVAL_S: Final[int] = 900
# How long Firehose retries a partitioned delivery to S3 before it writes the records under the error prefix.
PARTITIONING_RETRY_S: Final[int] = 300
DELIVERY_LOG_STREAM: Final[str] = "S3Delivery"
DELIVERY_LOG_RETENTION: Final[logs.RetentionDays] = logs.RetentionDays.ONE_MONTH
# The object actions of the perimeter's per-prefix statements (BUCKET_DATA_ACTIONS covers listings too).
OBJECT_READ_ACTIONS: Final[tuple[str, ...]] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:GetObjectTagging",
)
OBJECT_WRITE_ACTIONS: Final[tuple[str, ...]] = (
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "s3:AbortMultipartUpload",
)


class CaptureDelivery(Construct):
    """Props (keyword-only): router_log_group (the router function's), access_log_bucket (S3 server access logs
    land there under ``capture-bucket/``), retention_days (days a capture object or report is kept),
    removal_policy (bucket, key and delivery log group).

    Attributes: ``capture_key`` (kms.Key: the bucket's objects), ``capture_bucket`` (s3.Bucket), ``stream``
    (CfnDeliveryStream), ``delivery_role`` (Firehose's), ``subscription_role`` (CloudWatch Logs'),
    ``subscription`` (CfnSubscriptionFilter).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        router_log_group: logs.ILogGroup,
        access_log_bucket: s3.IBucket,
        retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.capture_key = kms.Key(
            self,
            "Key",
            description="Captured inference requests and answers, and the drift reports, in the capture bucket",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        self.capture_bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=self.capture_key,
            bucket_key_enabled=True,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_log_bucket,
            server_access_logs_prefix="capture-bucket/",
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="ExpireCaptures",
                    expiration=Duration.days(retention_days),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=removal_policy,
        )
        self.delivery_log_group = logs.LogGroup(
            self, "DeliveryErrors", retention=DELIVERY_LOG_RETENTION, removal_policy=removal_policy
        )
        delivery_log_stream = logs.LogStream(
            self,
            "DeliveryErrorStream",
            log_group=self.delivery_log_group,
            log_stream_name=DELIVERY_LOG_STREAM,
            removal_policy=removal_policy,
        )
        self.delivery_role = iam.Role(
            self,
            "DeliveryRole",
            # Firehose docs: the external id is the account, so no other account's stream can use this role.
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
            description="Firehose writes captured requests under the capture bucket's capture prefixes",
        )
        delivery_policy = self._may_deliver()
        self.stream = firehose.CfnDeliveryStream(
            self,
            "Stream",
            delivery_stream_type="DirectPut",
            # An AWS owned key: a record rests in the stream at most the 900 s buffer and only Firehose reads it;
            # the durable copy is under the capture key. A customer key here would add a KMS grant and a KMS call
            # per batch without narrowing who can read a record.
            delivery_stream_encryption_configuration_input=firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                key_type="AWS_OWNED_CMK"
            ),
            extended_s3_destination_configuration=self._destination(delivery_log_stream),
        )
        self.stream.node.add_dependency(delivery_policy)
        self._subscribe(router_log_group)

    def enforce_perimeter(self, *, drift_role: iam.IRole, break_glass_role_arn: str | None) -> None:
        """Deny statements on the bucket and key policies: outside Firehose's role, the drift job's role and the
        break-glass role nobody reads, writes or lists capture data; among them, only Firehose writes under
        capture/ and capture-errors/, only the drift job reads capture/ and writes reports/drift/.

        Conditioned on ``aws:PrincipalArn`` and scoped to data actions, as the async perimeter is, so the account
        and CloudFormation keep managing the bucket and key.
        """
        break_glass = [break_glass_role_arn] if break_glass_role_arn else []
        delivery, drift = self.delivery_role.role_arn, drift_role.role_arn
        bucket = self.capture_bucket
        statements = [
            perimeter_deny(
                "DenyDataAccessOutsidePerimeter",
                actions=list(BUCKET_DATA_ACTIONS),
                resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
                conditions={"ArnNotLike": {"aws:PrincipalArn": [delivery, drift, *break_glass]}},
            ),
            perimeter_deny(
                "DenyCaptureWritesOutsideDelivery",
                actions=list(OBJECT_WRITE_ACTIONS),
                resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in (CAPTURE_PREFIX, ERROR_ROOT)],
                conditions={"ArnNotLike": {"aws:PrincipalArn": [delivery, *break_glass]}},
            ),
            perimeter_deny(
                "DenyCaptureReadsOutsideDriftJob",
                actions=list(OBJECT_READ_ACTIONS),
                resources=[bucket.arn_for_objects(f"{CAPTURE_PREFIX}*")],
                conditions={"ArnNotLike": {"aws:PrincipalArn": [drift, *break_glass]}},
            ),
            perimeter_deny(
                "DenyReportWritesOutsideDriftJob",
                actions=list(OBJECT_WRITE_ACTIONS),
                resources=[bucket.arn_for_objects(f"{DRIFT_REPORT_PREFIX}*")],
                conditions={"ArnNotLike": {"aws:PrincipalArn": [drift, *break_glass]}},
            ),
        ]
        for statement in statements:
            bucket.add_to_resource_policy(statement)
        # AWS services acting as themselves carry no principal ARN; S3 decrypts with the caller's credentials.
        self.capture_key.add_to_resource_policy(
            perimeter_deny(
                "DenyDecryptOutsidePerimeter",
                actions=list(KEY_READ_ACTIONS),
                resources=["*"],
                conditions={
                    "ArnNotLike": {"aws:PrincipalArn": [delivery, drift, *break_glass]},
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            )
        )

    def _destination(
        self, delivery_log_stream: logs.LogStream
    ) -> firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty:
        stream_type = firehose.CfnDeliveryStream
        processors = [
            stream_type.ProcessorProperty(
                type="Decompression",
                parameters=[
                    stream_type.ProcessorParameterProperty(parameter_name="CompressionFormat", parameter_value="GZIP")
                ],
            ),
            stream_type.ProcessorProperty(
                type="CloudWatchLogProcessing",
                parameters=[
                    stream_type.ProcessorParameterProperty(
                        parameter_name="DataMessageExtraction", parameter_value="true"
                    )
                ],
            ),
            stream_type.ProcessorProperty(
                type="MetadataExtraction",
                parameters=[
                    stream_type.ProcessorParameterProperty(
                        parameter_name="MetadataExtractionQuery", parameter_value=PARTITION_QUERY
                    ),
                    stream_type.ProcessorParameterProperty(
                        parameter_name="JsonParsingEngine", parameter_value="JQ-1.6"
                    ),
                ],
            ),
            # One record a line: the drift job reads JSON lines (it copes without, but a reader with jq should not).
            stream_type.ProcessorProperty(type="AppendDelimiterToRecord"),
        ]
        return stream_type.ExtendedS3DestinationConfigurationProperty(
            bucket_arn=self.capture_bucket.bucket_arn,
            role_arn=self.delivery_role.role_arn,
            prefix=DATA_PREFIX,
            error_output_prefix=ERROR_PREFIX,
            compression_format="GZIP",
            file_extension=".jsonl.gz",
            buffering_hints=stream_type.BufferingHintsProperty(
                size_in_m_bs=BUFFER_SIZE_MB, interval_in_seconds=BUFFER_INTERVAL_S
            ),
            encryption_configuration=stream_type.EncryptionConfigurationProperty(
                kms_encryption_config=stream_type.KMSEncryptionConfigProperty(awskms_key_arn=self.capture_key.key_arn)
            ),
            dynamic_partitioning_configuration=stream_type.DynamicPartitioningConfigurationProperty(
                enabled=True, retry_options=stream_type.RetryOptionsProperty(duration_in_seconds=PARTITIONING_RETRY_S)
            ),
            processing_configuration=stream_type.ProcessingConfigurationProperty(enabled=True, processors=processors),
            cloud_watch_logging_options=stream_type.CloudWatchLoggingOptionsProperty(
                enabled=True,
                log_group_name=self.delivery_log_group.log_group_name,
                log_stream_name=delivery_log_stream.log_stream_name,
            ),
        )

    def _may_deliver(self) -> iam.Policy:
        """Write objects under the capture and error prefixes (and the multipart calls Firehose makes) with the
        capture key, through S3 only, and log delivery errors to its own stream; nothing else."""
        stack = Stack.of(self)
        prefixes = (CAPTURE_PREFIX, ERROR_ROOT)
        bucket_arn = self.capture_bucket.bucket_arn
        policy = iam.Policy(
            self,
            "DeliveryPolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["s3:PutObject", "s3:AbortMultipartUpload"],
                    resources=[self.capture_bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes],
                ),
                iam.PolicyStatement(
                    actions=["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    resources=[bucket_arn],
                ),
                iam.PolicyStatement(
                    actions=["kms:GenerateDataKey", "kms:Decrypt"],
                    resources=[self.capture_key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"},
                        # With an S3 Bucket Key the context is the bucket's ARN; without, the object's.
                        "StringLike": {
                            "kms:EncryptionContext:aws:s3:arn": [
                                bucket_arn,
                                *(f"{bucket_arn}/{prefix}*" for prefix in prefixes),
                            ]
                        },
                    },
                ),
                iam.PolicyStatement(
                    actions=["logs:PutLogEvents"],
                    resources=[
                        stack.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name=f"{self.delivery_log_group.log_group_name}:log-stream:{DELIVERY_LOG_STREAM}",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                ),
            ],
        )
        policy.attach_to_role(self.delivery_role)
        token = resource_token(self.capture_bucket, "Arn")
        for prefix in prefixes:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{token}/{prefix}*]",
                "Firehose names each capture object at delivery time (partition, time and a random suffix).",
            )
        return policy

    def _subscribe(self, router_log_group: logs.ILogGroup) -> None:
        """The subscription filter and the role CloudWatch Logs assumes to put the router's capture lines on the
        stream, and nothing else."""
        stack = Stack.of(self)
        self.subscription_role = iam.Role(
            self,
            "SubscriptionRole",
            # CloudWatch Logs docs: only this account's log events may use the role.
            assumed_by=iam.ServicePrincipal(
                "logs.amazonaws.com",
                conditions={
                    "StringLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="logs", resource="*", arn_format=ArnFormat.NO_RESOURCE_NAME
                        )
                    }
                },
            ),
            description="CloudWatch Logs puts the router's capture lines on the capture stream",
        )
        put_policy = iam.Policy(
            self,
            "SubscriptionPolicy",
            statements=[
                iam.PolicyStatement(
                    actions=["firehose:PutRecord", "firehose:PutRecordBatch"], resources=[self.stream.attr_arn]
                )
            ],
        )
        put_policy.attach_to_role(self.subscription_role)
        # A log group takes at most two subscription filters (CloudWatch Logs quotas): the shadow worker's
        # (infra/constructs/shadow.py) is one, this is the other.
        self.subscription = logs.CfnSubscriptionFilter(
            self,
            "RouterCaptureLines",
            log_group_name=router_log_group.log_group_name,
            destination_arn=self.stream.attr_arn,
            filter_pattern=FILTER_PATTERN,
            role_arn=self.subscription_role.role_arn,
        )
        # CloudWatch Logs checks the role by putting a test record when the filter is created.
        self.subscription.node.add_dependency(put_policy)
