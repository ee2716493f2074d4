"""Who is calling, as one string: the owner recorded on a job and the scope of an Idempotency-Key.

API Gateway puts the authenticated identity in ``requestContext.identity``: ``userArn`` in an IAM stage,
``apiKeyId`` in an API-key stage (both where an IAM stage also requires a key: the IAM principal wins, it is
the one that signed). An assumed role counts as the role, not the session: a credential refresh starts a new
session name, and the session name is whatever the assumer chose, so it proves nothing the role does not.

Every stage authenticates (``auth`` is ``iam`` or ``api_key``), so an event with none of these fields comes
only from local mode without an ``x-api-key`` or from a direct invoke: that is the one anonymous caller.
"""

from __future__ import annotations

import re
from typing import Any, Final

from functions.domain.callers import normalized_principal

# Tried in this order; the first one set names the caller, prefixed by its field so two kinds never collide.
CALLER_FIELDS: Final[tuple[str, ...]] = ("userArn", "apiKeyId", "cognitoIdentityId", "caller", "accountId")
ANONYMOUS_CALLER: Final[str] = "anonymous"
# An assumed role's principal id is "<role id>:<session name>" (role ids start AROA): the role id alone stays.
ROLE_SESSION_PRINCIPAL: Final[re.Pattern[str]] = re.compile(r"(AROA[A-Z0-9]+):.+")


def caller_identity(event: dict[str, Any]) -> str:
    """The caller of a REST proxy event, normalized; :data:`ANONYMOUS_CALLER` when it names none."""
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, dict) else None
    if not isinstance(identity, dict):
        return ANONYMOUS_CALLER
    for name in CALLER_FIELDS:
        value = identity.get(name)
        if isinstance(value, str) and value:
            return f"{name}:{_normalized(name, value)}"
    return ANONYMOUS_CALLER


def _normalized(name: str, value: str) -> str:
    if name == "userArn":
        return normalized_principal(value)
    session = ROLE_SESSION_PRINCIPAL.fullmatch(value) if name == "caller" else None
    return value if session is None else session[1]
