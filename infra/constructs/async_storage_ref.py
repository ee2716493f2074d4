"""AsyncStorageRef: the platform's async storage as a model stack sees it (names and ARNs, no constructs).

A model stack never holds a reference to the platform's constructs: CDK would turn each one into a stack
export, and exports lock the stack that makes them. It gets the bucket name, key and topic ARNs through
:mod:`infra.constructs.platform_parameters` and grants its endpoint roles with identity policies only (the
key policy trusts the account's IAM policies; the bucket and topic policies only add deny-without-TLS).
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from functions.config.async_contract import FAILURE_PREFIX, INPUT_PREFIX, OUTPUT_PREFIX
from infra.guardrails import acknowledge, nag_text


@dataclass(frozen=True, slots=True)
class AsyncStorageRef:
    """Props: bucket_name, key_arn, success_topic_arn, error_topic_arn (tokens or literals);
    bucket_nag_text: how cdk-nag prints the bucket name in a finding id (``<PlatformAsyncBucketName>``)."""

    bucket_name: str
    key_arn: str
    success_topic_arn: str
    error_topic_arn: str
    bucket_nag_text: str

    def output_path(self, endpoint_name: str) -> str:
        return f"s3://{self.bucket_name}/{OUTPUT_PREFIX}{endpoint_name}/"

    def failure_path(self, endpoint_name: str) -> str:
        return f"s3://{self.bucket_name}/{FAILURE_PREFIX}{endpoint_name}/"

    def grant_endpoint(self, role: iam.IRole, endpoint_name: str) -> None:
        """What an async endpoint's execution role needs: read its inputs, write its results, notify, use the key."""
        partition = Stack.of(role).partition
        prefixes = {
            "input": f"{INPUT_PREFIX}{endpoint_name}/*",
            "output": f"{OUTPUT_PREFIX}{endpoint_name}/*",
            "failure": f"{FAILURE_PREFIX}{endpoint_name}/*",
        }

        def objects(prefix: str) -> str:
            return f"arn:{partition}:s3:::{self.bucket_name}/{prefix}"

        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects(prefixes["input"])])
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[objects(prefixes["output"]), objects(prefixes["failure"])]
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sns:Publish"], resources=[self.success_topic_arn, self.error_topic_arn])
        )
        # Decrypt reads inputs; GenerateDataKey writes outputs and publishes to the CMK-encrypted topics.
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[self.key_arn])
        )
        for prefix in prefixes.values():
            acknowledge(
                role,
                f"AwsSolutions-IAM5[Resource::arn:{nag_text(partition)}:s3:::{self.bucket_nag_text}/{prefix}]",
                f"Object-level access under this endpoint's own prefix ({prefix}); job ids are only known at run "
                "time, so the object key must end in a wildcard.",
            )
