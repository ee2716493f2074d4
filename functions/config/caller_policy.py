"""The caller policy: which callers may call which models, synchronously and/or asynchronously.

Written in the stage config (``infra/stages.json``, ``caller_policy``) and handed to the router as the
``CALLER_POLICY`` environment variable in the same JSON, compact; both are read by :func:`parse_caller_policy`,
so a policy the stage accepted is one the router accepts. No policy (``null``, the variable unset) lets every
caller API Gateway authenticated call every model.

A rule names its caller by one of:
    ``principal``: an IAM principal ARN, ``*`` matching any run of characters. An assumed role is named by
        its role ARN without a path (``arn:aws:iam::123456789012:role/ranker``): API Gateway reports an
        assumed-role ARN, which carries the role's name and session but not its path, and the router matches
        the role (functions/domain/callers.py).
    ``api_key_id``: an API key's id, which API Gateway puts in the event (``requestContext.identity.apiKeyId``;
        the key's name is not there). The stage's own key's id is the platform stack's ``ApiKeyId`` output.

Example:
    >>> rules = [{"principal": "arn:aws:iam::123456789012:role/ranker", "models": {"iris": ["sync"]}}]
    >>> policy = parse_caller_policy(rules, ConfigReader("stages.json").fail)
    >>> policy.rules[0].models["iris"]
    frozenset({'sync'})
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

CallMode = Literal["sync", "async"]
CALL_MODES: Final[tuple[CallMode, ...]] = ("sync", "async")
ANY_MODEL: Final[str] = "*"
RULE_FIELDS: Final[frozenset[str]] = frozenset({"principal", "api_key_id", "models"})
# An IAM user, role or account root, an STS federated user; '*' may stand for any run of characters.
PRINCIPAL_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"arn:[a-z*-]+:(iam|sts)::(\d{12}|\*):(root|user/[\w+=,.@/*-]+|role/[\w+=,.@/*-]+|federated-user/[\w+=,.@*-]+|\*)"
)
# API Gateway's key ids are 10 lower-case letters and digits; any run of letters and digits is accepted.
API_KEY_ID_PATTERN: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9]{1,128}")

Fail = Callable[[str, str], Exception]  # (field path, message) -> the error to raise


@dataclass(frozen=True)
class CallerRule:
    """One caller (exactly one of ``principal`` and ``api_key_id``) and the modes it may call each model in;
    ``models`` may name :data:`ANY_MODEL`."""

    models: Mapping[str, frozenset[CallMode]]
    principal: str | None = None
    api_key_id: str | None = None

    def document(self) -> dict[str, Any]:
        caller = {"principal": self.principal} if self.principal is not None else {"api_key_id": self.api_key_id}
        return {**caller, "models": {name: [mode for mode in CALL_MODES if mode in modes]
                                     for name, modes in self.models.items()}}  # fmt: skip


@dataclass(frozen=True)
class CallerPolicy:
    rules: tuple[CallerRule, ...]

    def to_env(self) -> str:
        """The ``CALLER_POLICY`` value: the rules as compact JSON, which :func:`parse_caller_policy` reads back."""
        return json.dumps([rule.document() for rule in self.rules], separators=(",", ":"))


def parse_caller_policy(
    raw: Any, fail: Fail, *, path: str = "caller_policy", model_names: Collection[str] | None = None
) -> CallerPolicy:
    """The policy in ``raw`` (a list of rules); ``fail(path, message)`` makes the error naming a bad field.

    ``model_names``: the models that exist (the stage config knows them); None skips that check (the router
    has the stage's word for it).
    """
    if not isinstance(raw, list):
        raise fail(path, f"must be a list of caller rules (or null for no policy), got {type(raw).__name__}")
    if not raw:
        raise fail(path, "an empty policy would deny every caller; use null for no policy")
    return CallerPolicy(tuple(_rule(entry, fail, f"{path}[{index}]", model_names) for index, entry in enumerate(raw)))


def caller_policy_from_env(value: str | None, fail: Fail) -> CallerPolicy | None:
    """The ``CALLER_POLICY`` variable's policy; None when it is unset or empty (no policy)."""
    if not value:
        return None
    try:
        raw = json.loads(value)
    except ValueError as error:
        raise fail("CALLER_POLICY", f"is not JSON: {error}") from None
    return parse_caller_policy(raw, fail, path="CALLER_POLICY")


def _rule(raw: Any, fail: Fail, path: str, model_names: Collection[str] | None) -> CallerRule:
    if not isinstance(raw, dict):
        raise fail(path, f"must be an object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - RULE_FIELDS)
    if unknown:
        raise fail(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(RULE_FIELDS))})")
    callers = [name for name in ("principal", "api_key_id") if name in raw]
    if len(callers) != 1:
        raise fail(path, "must name its caller by exactly one of principal and api_key_id")
    principal = raw.get("principal")
    if "principal" in raw:
        _check_principal(principal, fail, f"{path}.principal")
    api_key_id = raw.get("api_key_id")
    if "api_key_id" in raw and not (isinstance(api_key_id, str) and API_KEY_ID_PATTERN.fullmatch(api_key_id)):
        raise fail(f"{path}.api_key_id", f"{api_key_id!r} is not an API key id (letters and digits)")
    return CallerRule(_models(raw.get("models"), fail, f"{path}.models", model_names), principal, api_key_id)


def _check_principal(principal: Any, fail: Fail, path: str) -> None:
    if not isinstance(principal, str) or not PRINCIPAL_PATTERN.fullmatch(principal):
        shown = principal if not isinstance(principal, str) else principal[:200]
        raise fail(path, f"{shown!r} is not an IAM user, role, root or federated-user ARN (or a pattern of one)")
    if ":role/" in principal and "/" in principal.partition(":role/")[2]:
        raise fail(path, f"{principal!r}: name a role without its path (an assumed-role ARN carries no path)")


def _models(raw: Any, fail: Fail, path: str, model_names: Collection[str] | None) -> dict[str, frozenset[CallMode]]:
    if not isinstance(raw, dict) or not raw:
        raise fail(path, 'must map model names (or "*") to the modes they may be called in: ["sync", "async"]')
    models: dict[str, frozenset[CallMode]] = {}
    for name, modes in raw.items():
        if model_names is not None and name != ANY_MODEL and name not in model_names:
            raise fail(
                f"{path}.{name}",
                f'no model named {name!r} is configured (known: {", ".join(sorted(model_names))}, "*")',
            )
        if not isinstance(modes, list) or not modes or any(mode not in CALL_MODES for mode in modes):
            raise fail(f"{path}.{name}", f'{modes!r} must be a non-empty list of "sync" and "async"')
        models[name] = frozenset(mode for mode in CALL_MODES if mode in modes)
    return models
