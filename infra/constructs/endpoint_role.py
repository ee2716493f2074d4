"""What a SageMaker model's execution role may do: pull its image, read its artifact, write its logs."""

from __future__ import annotations

import re
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from infra.guardrails import acknowledge, nag_text

_ECR_PARTS: Final[re.Pattern[str]] = re.compile(r"^[^/]+/(?P<repository>[^:@]+)")


def grant_image_pull(role: iam.IRole, image_uri: str) -> None:
    """Pull access to the image's own ECR repository ({account}/{region} filled in from the stack)."""
    stack = Stack.of(role)
    parts = _ECR_PARTS.match(image_uri)
    assert parts is not None  # the stage config checked the URI against its ECR pattern
    registry_account, _, _, registry_region = image_uri.split("/", 1)[0].split(".")[:4]
    account = stack.account if registry_account == "{account}" else registry_account
    region = stack.region if registry_region == "{region}" else registry_region
    repository_arn = f"arn:{stack.partition}:ecr:{region}:{account}:repository/{parts['repository']}"
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            resources=[repository_arn],
        )
    )
    role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))


def grant_logging(role: iam.IRole, endpoint_names: list[str]) -> None:
    """Writing to each endpoint's own log group, and metrics to SageMaker's namespaces only."""
    stack = Stack.of(role)
    for name in endpoint_names:
        group = f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:/aws/sagemaker/Endpoints/{name}"
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogGroup", "logs:DescribeLogStreams"],
                resources=[f"{group}:*"],
            )
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[f"{group}:log-stream:*"]
            )
        )
        rendered = (
            f"arn:{nag_text(stack.partition)}:logs:{nag_text(stack.region)}:{nag_text(stack.account)}"
            f":log-group:/aws/sagemaker/Endpoints/{name}"
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{rendered}:*]",
            "The endpoint's own log group; SageMaker names its streams per instance and variant at run time.",
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{rendered}:log-stream:*]",
            "Log streams in the endpoint's own log group; SageMaker names them per instance at run time.",
        )
    # Per-instance metrics (CPU, memory, disk) go to SageMaker's own namespace only.
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"],
            resources=["*"],
            conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}},
        )
    )
    acknowledge(
        role,
        "AwsSolutions-IAM5[Resource::*]",
        "Two actions without resource-level permissions: cloudwatch:PutMetricData (limited by condition to "
        "SageMaker's /aws/sagemaker/* namespaces) and ecr:GetAuthorizationToken (it returns a registry token; "
        "the image pull itself is scoped to the image's repository).",
    )


def grant_object_read(role: iam.IRole, bucket: str, key: str) -> None:
    stack = Stack.of(role)
    role.add_to_principal_policy(
        iam.PolicyStatement(actions=["s3:GetObject"], resources=[f"arn:{stack.partition}:s3:::{bucket}/{key}"])
    )
