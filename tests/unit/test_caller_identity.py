"""Who a REST event's caller is (functions/handlers/router/caller.py): the owner of the jobs it submits and the
scope of its Idempotency-Keys. A credential refresh must not change it; two principals must never share it."""

from __future__ import annotations

from typing import Any

import pytest

from functions.handlers.router.caller import ANONYMOUS_CALLER, caller_identity
from local.api_gateway import build_rest_event


def event(**identity: Any) -> dict[str, Any]:
    return {"requestContext": {"identity": {"sourceIp": "203.0.113.9", "userArn": None, **identity}}}


def test_two_sessions_of_one_role_are_one_caller() -> None:
    first = caller_identity(event(userArn="arn:aws:sts::123456789012:assumed-role/ranker/i-0abc"))
    refreshed = caller_identity(event(userArn="arn:aws:sts::123456789012:assumed-role/ranker/i-0abc-renewed"))
    assert first == refreshed == "userArn:arn:aws:iam::123456789012:role/ranker"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("arn:aws:sts::123456789012:assumed-role/ranker/s", "arn:aws:sts::123456789012:assumed-role/scorer/s"),
        ("arn:aws:sts::123456789012:assumed-role/ranker/s", "arn:aws:sts::210987654321:assumed-role/ranker/s"),
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/bob"),
        ("arn:aws:iam::123456789012:user/ranker", "arn:aws:sts::123456789012:assumed-role/ranker/s"),
    ],
    ids=["other-role", "other-account", "other-user", "user-vs-role-of-one-name"],
)
def test_different_principals_stay_different_callers(one: str, other: str) -> None:
    assert caller_identity(event(userArn=one)) != caller_identity(event(userArn=other))


def test_an_iam_user_is_kept_as_it_is() -> None:
    assert caller_identity(event(userArn="arn:aws:iam::123456789012:user/ci/app")) == (
        "userArn:arn:aws:iam::123456789012:user/ci/app"
    )


def test_an_api_key_caller_is_its_key_id_never_the_key() -> None:
    caller = caller_identity(event(apiKey="s3cr3t-key-value", apiKeyId="a1b2c3d4e5"))
    assert caller == "apiKeyId:a1b2c3d4e5"


def test_an_iam_caller_that_also_sent_an_api_key_is_the_principal_that_signed() -> None:
    caller = caller_identity(
        event(userArn="arn:aws:sts::123456789012:assumed-role/ranker/s1", apiKey="k", apiKeyId="a1b2c3d4e5")
    )
    assert caller == "userArn:arn:aws:iam::123456789012:role/ranker"


def test_a_role_sessions_principal_id_drops_the_session() -> None:
    assert caller_identity(event(caller="AROAEXAMPLEROLEID:i-0abc")) == caller_identity(
        event(caller="AROAEXAMPLEROLEID:i-0def")
    )
    assert caller_identity(event(caller="AROAEXAMPLEROLEID:i-0abc")) == "caller:AROAEXAMPLEROLEID"
    # A federated user's principal id is "<account>:<name>": the name is the user, kept.
    assert caller_identity(event(caller="123456789012:alice")) != caller_identity(event(caller="123456789012:bob"))


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"requestContext": None},
        {"requestContext": {"identity": None}},
        {"requestContext": {"identity": ["not", "a", "mapping"]}},
        {"requestContext": "garbage"},
        event(),
        event(userArn="", apiKeyId=None),
        event(userArn=12345),
    ],
    ids=lambda raw: str(raw)[:40],
)
def test_an_event_naming_no_caller_is_the_one_anonymous_caller(raw: dict[str, Any]) -> None:
    assert caller_identity(raw) == ANONYMOUS_CALLER


def local_caller(headers: dict[str, str]) -> str:
    event = build_rest_event("GET", "/v2/jobs/" + "0" * 32, headers, b"")
    assert event is not None
    return caller_identity(event)


def test_local_mode_tells_callers_apart_by_their_api_key_as_the_dev_stage_does() -> None:
    alice, bob = local_caller({"x-api-key": "alice-key"}), local_caller({"X-API-Key": "bob-key"})
    assert alice == local_caller({"X-Api-Key": "alice-key"})  # header names are case-insensitive
    assert len({alice, bob, ANONYMOUS_CALLER}) == 3
    assert alice.startswith("apiKeyId:local-")
    assert "alice-key" not in alice  # the key is a secret: its derived id is what a job records
    event = build_rest_event("GET", "/v2", {"x-api-key": "alice-key"}, b"")
    assert event is not None
    assert event["requestContext"]["identity"]["apiKey"] == "alice-key"


@pytest.mark.parametrize("headers", [{}, {"x-api-key": ""}, {"Authorization": "Bearer x"}])
def test_local_mode_without_an_api_key_is_the_one_anonymous_caller(headers: dict[str, str]) -> None:
    assert local_caller(headers) == ANONYMOUS_CALLER
