"""The async data perimeter: resource policies that admit only the stage's own principals to async data.

Identity policies say what each role may do; these Deny statements say that nobody else may, whatever their
identity policy grants (an administrator's ``s3:*`` included). Each is scoped to data actions and conditioned
on ``aws:PrincipalArn``, so the account root and CloudFormation keep managing the bucket, topics, queue and key
(their policies included): a Deny on ``s3:*`` or ``kms:*`` could lock the stack out of its own resources.

Who is admitted: the router, result and sweeper roles (by ARN), the stage's async endpoint roles (by IAM path,
so that adding a model never changes the platform stack), and the stage's break-glass role if it names one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from aws_cdk import aws_iam as iam

from infra.constructs.async_storage import AsyncStorage

# Everything that reads, writes or lists async objects; bucket configuration (policy, encryption, lifecycle,
# logging) stays with IAM so the stack can always be updated and deleted.
BUCKET_DATA_ACTIONS: Final[tuple[str, ...]] = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAttributes",
    "s3:GetObjectTagging",
    "s3:PutObject",
    "s3:PutObjectTagging",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "s3:ListBucket",
    "s3:ListBucketVersions",
    "s3:ListBucketMultipartUploads",
    "s3:ListMultipartUploadParts",
    "s3:AbortMultipartUpload",
)
# The key actions that turn ciphertext into plaintext (directly, or re-encrypted under a key the caller holds).
# Encrypt and GenerateDataKey are left to IAM: the bucket, topic and queue policies already refuse what an
# outsider could write with them, and DynamoDB creates a table's key with the deploying principal's credentials.
KEY_READ_ACTIONS: Final[tuple[str, ...]] = ("kms:Decrypt", "kms:ReEncryptFrom")


def enforce_data_perimeter(
    storage: AsyncStorage,
    *,
    function_roles: Sequence[iam.IRole],
    async_endpoint_roles: str,
    break_glass_role_arn: str | None,
) -> None:
    """Add the perimeter's Deny statements to the bucket, topic, queue and key policies of ``storage``.

    ``async_endpoint_roles`` is an ARN pattern (infra.stacks.naming.role_arn_pattern) of the stage's async
    endpoint execution roles; ``break_glass_role_arn`` an operator role for redrive, resubmit and inspection.
    """
    break_glass = [break_glass_role_arn] if break_glass_role_arn else []
    admitted = [*(role.role_arn for role in function_roles), async_endpoint_roles, *break_glass]
    storage.bucket.add_to_resource_policy(
        perimeter_deny(
            "DenyDataAccessOutsidePerimeter",
            actions=list(BUCKET_DATA_ACTIONS),
            resources=[storage.bucket.bucket_arn, storage.bucket.arn_for_objects("*")],
            conditions={"ArnNotLike": {"aws:PrincipalArn": admitted}},
        )
    )
    # Only SageMaker, running as an async endpoint's role, announces results: anyone else could hand one job
    # another's output or any error text.
    for topic in (storage.success_topic, storage.error_topic):
        topic.add_to_resource_policy(
            perimeter_deny(
                "DenyPublishOutsideAsyncEndpoints",
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={"ArnNotLike": {"aws:PrincipalArn": async_endpoint_roles}},
            )
        )
    # The result queue takes messages from its two topics only (and from the break-glass role, which redrives
    # dead letters with SendMessageBatch: ops/redrive.py). Both conditions must hold for the Deny to apply.
    send_conditions: dict[str, dict[str, object]] = {"ArnNotEquals": {"aws:SourceArn": storage.topic_arns}}
    if break_glass:
        send_conditions["ArnNotLike"] = {"aws:PrincipalArn": break_glass}
    storage.queue.add_to_resource_policy(
        perimeter_deny(
            "DenySendOutsideResultTopics",
            actions=["sqs:SendMessage"],
            resources=[storage.queue.queue_arn],
            conditions=send_conditions,
        )
    )
    # AWS services acting as themselves (SNS delivering to the encrypted queues, DynamoDB's own use of the table
    # key through its grant) carry no principal ARN; aws:PrincipalIsAWSService exempts exactly those.
    storage.key.add_to_resource_policy(
        perimeter_deny(
            "DenyDecryptOutsidePerimeter",
            actions=list(KEY_READ_ACTIONS),
            resources=["*"],
            conditions={
                "ArnNotLike": {"aws:PrincipalArn": admitted},
                "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
            },
        )
    )


def perimeter_deny(
    sid: str, *, actions: list[str], resources: list[str], conditions: dict[str, Any]
) -> iam.PolicyStatement:
    """A resource-policy Deny for every principal, applying only where ``conditions`` hold."""
    return iam.PolicyStatement(
        sid=sid,
        effect=iam.Effect.DENY,
        principals=[iam.AnyPrincipal()],
        actions=actions,
        resources=resources,
        conditions=conditions,
    )
