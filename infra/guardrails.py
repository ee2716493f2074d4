"""cdk-nag wiring and the one way this app acknowledges a finding: with a reason, next to the resource.

cdk-nag 3 runs as a CDK policy-validation plugin (``Validations.of(app).add_plugins``); the ``Aspects`` form
of cdk-nag 2 fails on 3.x. Any unacknowledged finding fails ``cdk synth``. Acknowledgments are recorded in
construct metadata, so :func:`acknowledgments` can list every one with its reason:
``python -m infra.findings --stage prod`` prints them for a security review.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, Stack, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


@dataclass(frozen=True, slots=True)
class AcknowledgedFinding:
    path: str
    rule: str
    reason: str


def add_guardrails(scope: IConstruct) -> None:
    """Run the AwsSolutions pack on every stack under ``scope`` (an App or Stage) at synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def acknowledge(scope: IConstruct, finding: str, reason: str) -> None:
    """Acknowledge one cdk-nag finding (``AwsSolutions-IAM5[Resource::*]``) on ``scope`` and below."""
    if len(reason.strip()) < 20:
        raise ValueError(f"acknowledging {finding} on {scope.node.path} needs a reason a reviewer can check")
    Validations.of(scope).acknowledge(Acknowledgment(id=finding, reason=reason))


def resource_token(resource: IConstruct, attribute: str | None = None) -> str:
    """How cdk-nag prints a reference to ``resource`` in a finding id: ``<LogicalId>`` or ``<LogicalId.Arn>``."""
    default_child = resource.node.default_child
    element: Any = default_child if default_child is not None else resource
    logical_id = Stack.of(resource).get_logical_id(element)
    return f"<{logical_id}.{attribute}>" if attribute else f"<{logical_id}>"


def acknowledgments(root: IConstruct) -> list[AcknowledgedFinding]:
    """Every acknowledgment recorded under ``root``, in construct-tree order."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[AcknowledgedFinding] = []
    for node in root.node.find_all():
        for entry in node.node.metadata:
            if entry.type != key:
                continue
            # Recorded as {"<kind>::<rule id>": reason}; cdk-nag ids carry the "Annotation::" kind.
            data: dict[str, Any] = entry.data
            for rule, reason in data.items():
                found.append(AcknowledgedFinding(node.node.path, rule.split("::", 1)[-1], str(reason)))
    return found


def nag_text(value: str) -> str:
    """How cdk-nag prints a pseudo parameter inside a finding id (``<AWS::Region>``), or the literal value."""
    for token, rendered in (
        ("${Token[AWS.Region", "<AWS::Region>"),
        ("${Token[AWS.AccountId", "<AWS::AccountId>"),
        ("${Token[AWS.Partition", "<AWS::Partition>"),
    ):
        if value.startswith(token):
            return rendered
    return value
