"""What model stacks learn from the platform stack, passed through SSM parameters instead of stack exports.

CloudFormation refuses to change or delete an export another stack imports, so an export would lock the
platform's bucket, key and topics for as long as any model stack uses them. The platform stack writes each
value to an SSM parameter whose name is derived from the stage; a model stack declares a CloudFormation
parameter of type ``AWS::SSM::Parameter::Value<String>``, which CloudFormation resolves on every deploy of
that stack. The platform can replace a topic or key freely; model stacks pick the new value up on their next
deploy (``cdk deploy --all`` deploys them after the platform).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from aws_cdk import CfnParameter
from aws_cdk import aws_ssm as ssm
from constructs import Construct

PARAMETER_ROOT: Final[str] = "/inference-router"


class PlatformValue(StrEnum):
    """One value the platform publishes; the member value is the last part of the SSM parameter name."""

    ASYNC_BUCKET = "async/bucket-name"
    ASYNC_KEY_ARN = "async/key-arn"
    ASYNC_SUCCESS_TOPIC_ARN = "async/success-topic-arn"
    ASYNC_ERROR_TOPIC_ARN = "async/error-topic-arn"
    PAGE_TOPIC_ARN = "alarms/page-topic-arn"
    TICKET_TOPIC_ARN = "alarms/ticket-topic-arn"


# One per alarm topic of infra.config.types.ALARM_TOPICS (a test holds the two together).
ALARM_TOPIC_VALUES: Final[dict[str, PlatformValue]] = {
    "page": PlatformValue.PAGE_TOPIC_ARN,
    "ticket": PlatformValue.TICKET_TOPIC_ARN,
}


def parameter_name(stage: str, value: PlatformValue) -> str:
    return f"{PARAMETER_ROOT}/{stage}/{value.value}"


def _construct_id(value: PlatformValue) -> str:
    return "".join(part.capitalize() for part in value.value.replace("/", "-").split("-"))


def publish_platform_values(scope: Construct, stage: str, values: Mapping[PlatformValue, str]) -> None:
    """Write every platform value to its SSM parameter (all of them: a model stack reads each one)."""
    missing = set(PlatformValue) - set(values)
    if missing:
        raise ValueError(f"platform values not published: {', '.join(sorted(v.name for v in missing))}")
    for value in PlatformValue:
        ssm.StringParameter(
            scope,
            f"Published{_construct_id(value)}",
            parameter_name=parameter_name(stage, value),
            string_value=values[value],
            description=f"Read by the stage's model stacks at deploy time ({value.name})",
        )


class PlatformValues:
    """The platform's values as a model stack sees them: tokens CloudFormation resolves at deploy.

    Each value becomes an SSM-typed template parameter (logical id ``Platform<Value>``) the first time it is
    asked for, so a stack declares only the parameters it uses.
    """

    def __init__(self, scope: Construct, stage: str) -> None:
        self._scope = scope
        self._stage = stage
        self._tokens: dict[PlatformValue, str] = {}

    def get(self, value: PlatformValue) -> str:
        if value not in self._tokens:
            parameter = CfnParameter(
                self._scope,
                f"Platform{_construct_id(value)}",
                type="AWS::SSM::Parameter::Value<String>",
                default=parameter_name(self._stage, value),
                description=f"SSM parameter the platform stack writes ({value.name})",
            )
            self._tokens[value] = parameter.value_as_string
        return self._tokens[value]

    def alarm_topic_arn(self, topic: str) -> str:
        return self.get(ALARM_TOPIC_VALUES[topic])
