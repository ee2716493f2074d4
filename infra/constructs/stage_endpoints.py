"""One grant for every function that calls this stage's SageMaker endpoints (the router, the shadow worker, the
sweeper): the actions on ``endpoint/<prefix>*``, and the cdk-nag acknowledgment of that wildcard with its reason."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_iam as iam

from infra.guardrails import acknowledge, nag_text

# Model stacks come and go; a policy by the stage's prefix (no other stage's prefix starts with it, checked by the
# stage config) never needs editing when they do.
WHY_BY_PREFIX = "This stage's endpoints, by the stage's endpoint name prefix: model stacks come and go without editing"


def grant_stage_endpoints(role: iam.IRole, actions: Sequence[str], endpoint_name_prefix: str, *, who: str) -> None:
    """Allow ``actions`` on every endpoint whose name starts with the stage's prefix; ``who`` names the role's
    function in the acknowledgment."""
    stack = Stack.of(role)
    # SageMaker ARNs hold the endpoint name in lower case, whatever case it was created with.
    prefix = endpoint_name_prefix.lower()
    endpoints = stack.format_arn(service="sagemaker", resource="endpoint", resource_name=f"{prefix}*")
    role.add_to_principal_policy(iam.PolicyStatement(actions=list(actions), resources=[endpoints]))
    rendered = (
        f"arn:{nag_text(stack.partition)}:sagemaker:{nag_text(stack.region)}:{nag_text(stack.account)}"
        f":endpoint/{prefix}*"
    )
    acknowledge(
        role,
        f"AwsSolutions-IAM5[Resource::{rendered}]",
        f"{WHY_BY_PREFIX} the {who}'s policy ({', '.join(actions)}).",
    )
