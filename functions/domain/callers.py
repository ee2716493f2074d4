"""Who is calling, as API Gateway authenticated them, in a form that stays the same across credential refreshes.

An assumed role's ARN carries the role session name (``arn:aws:sts::123456789012:assumed-role/ranker/i-0abc``),
which changes whenever the caller's credentials are refreshed; the role is what a policy names and what owns a
job. :func:`normalized_principal` keeps the role and drops the session.

Example:
    >>> normalized_principal("arn:aws:sts::123456789012:assumed-role/ranker/session-1")
    'arn:aws:iam::123456789012:role/ranker'
    >>> CallerIdentity.from_request_identity({"userArn": "arn:aws:iam::123456789012:user/alice"}).principal
    'arn:aws:iam::123456789012:user/alice'
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

# https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_identifiers.html#identifiers-arns: an STS
# assumed-role ARN is arn:PARTITION:sts::ACCOUNT:assumed-role/ROLE-NAME/ROLE-SESSION-NAME (the role's path is
# not in it, so the role ARN below has none).
ASSUMED_ROLE: Final[re.Pattern[str]] = re.compile(
    r"arn:(?P<partition>[a-z-]+):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/[^/]+"
)


def normalized_principal(arn: str) -> str:
    """``arn`` with an assumed role's session dropped (as the role's IAM ARN); any other ARN as it is."""
    assumed = ASSUMED_ROLE.fullmatch(arn)
    if assumed is None:
        return arn
    return f"arn:{assumed['partition']}:iam::{assumed['account']}:role/{assumed['role']}"


@dataclass(frozen=True)
class CallerIdentity:
    """The caller's IAM principal (normalized) and API key id, each None where the stage does not use it.

    In an IAM stage that also requires an API key, both are set; in local mode, neither may be.
    """

    principal: str | None = None
    api_key_id: str | None = None

    @classmethod
    def from_request_identity(cls, identity: Mapping[str, Any]) -> CallerIdentity:
        """From an API Gateway REST event's ``requestContext.identity`` (``userArn``, ``apiKeyId``)."""
        user_arn = identity.get("userArn")
        api_key_id = identity.get("apiKeyId")
        return cls(
            principal=normalized_principal(user_arn) if isinstance(user_arn, str) and user_arn else None,
            api_key_id=api_key_id if isinstance(api_key_id, str) and api_key_id else None,
        )
