"""Whether a caller may call a model, and in which modes, under the stage's caller policy.

A caller gets the union of the modes of every rule that names it (by IAM principal or by API key id) for the
model or for ``*``. Without a policy every authenticated caller may call every model in every mode.

Example:
    >>> permitted_modes(policy, CallerIdentity(principal="arn:aws:iam::123456789012:role/ranker"), "iris")
    frozenset({'sync'})
"""

from __future__ import annotations

import functools
import re

from functions.config.caller_policy import ANY_MODEL, CALL_MODES, CallerPolicy, CallerRule, CallMode
from functions.domain.callers import CallerIdentity
from functions.domain.errors import CallerNotAllowedError

EVERY_MODE: frozenset[CallMode] = frozenset(CALL_MODES)
MODE_WORDS: dict[CallMode, str] = {"sync": "synchronously", "async": "asynchronously"}


def permitted_modes(policy: CallerPolicy | None, caller: CallerIdentity, model: str) -> frozenset[CallMode]:
    """The modes ``caller`` may call ``model`` in: every mode without a policy, none when no rule names it."""
    if policy is None:
        return EVERY_MODE
    modes: set[CallMode] = set()
    for rule in policy.rules:
        if _names(rule, caller):
            modes |= rule.models.get(model, frozenset()) | rule.models.get(ANY_MODEL, frozenset())
    return frozenset(modes)


def require_mode(permitted: frozenset[CallMode], model: str, mode: CallMode | None = None) -> None:
    """Raise :class:`CallerNotAllowedError` (403) unless ``mode`` (any mode, when None) is ``permitted``."""
    if mode is None and not permitted:
        raise CallerNotAllowedError(f"this caller may not call model {model!r} (caller policy)")
    if mode is not None and mode not in permitted:
        raise CallerNotAllowedError(f"this caller may not call model {model!r} {MODE_WORDS[mode]} (caller policy)")


def _names(rule: CallerRule, caller: CallerIdentity) -> bool:
    if rule.api_key_id is not None:
        return caller.api_key_id == rule.api_key_id
    return (
        caller.principal is not None
        and rule.principal is not None
        and _pattern(rule.principal).fullmatch(caller.principal) is not None
    )


@functools.cache
def _pattern(principal: str) -> re.Pattern[str]:
    """``*`` matches any run of characters (as in IAM policies); everything else is literal."""
    return re.compile(".*".join(re.escape(part) for part in principal.split("*")))
