"""The caller policy: parsing (every error names its field), principal normalization and matching."""

from __future__ import annotations

from typing import Any

import pytest

from functions.config.caller_policy import CallerPolicy, caller_policy_from_env, parse_caller_policy
from functions.config.config_reader import ConfigError, ConfigReader
from functions.config.router_settings import RouterSettings, SettingsError
from functions.domain.caller_policy import EVERY_MODE, permitted_modes, require_mode
from functions.domain.callers import CallerIdentity, normalized_principal
from functions.domain.errors import CallerNotAllowedError

ACCOUNT = "123456789012"
RANKER = f"arn:aws:iam::{ACCOUNT}:role/ranker"
RULES: list[dict[str, Any]] = [
    {"principal": RANKER, "models": {"iris": ["sync"]}},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/batch-*", "models": {"iris": ["async"], "churn": ["sync", "async"]}},
    {"api_key_id": "a1b2c3d4e5", "models": {"*": ["sync"]}},
    {"principal": f"arn:aws:iam::{ACCOUNT}:user/alice", "models": {"iris": ["async"]}},
    {"principal": RANKER, "models": {"churn": ["async"]}},
]


def policy(rules: Any = RULES, models: tuple[str, ...] | None = ("iris", "churn")) -> CallerPolicy:
    return parse_caller_policy(rules, ConfigReader("stages.json").fail, model_names=models)


def role_session(role: str, session: str = "i-0abc") -> CallerIdentity:
    return CallerIdentity.from_request_identity({"userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"})


@pytest.mark.parametrize(
    ("arn", "normalized"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/ranker/i-0abc", RANKER),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/ranker/botocore-session-1700000000", RANKER),
        (f"arn:aws-us-gov:sts::{ACCOUNT}:assumed-role/r/s", f"arn:aws-us-gov:iam::{ACCOUNT}:role/r"),
        (f"arn:aws:iam::{ACCOUNT}:user/alice", f"arn:aws:iam::{ACCOUNT}:user/alice"),
        (f"arn:aws:iam::{ACCOUNT}:root", f"arn:aws:iam::{ACCOUNT}:root"),
        (f"arn:aws:sts::{ACCOUNT}:federated-user/bob", f"arn:aws:sts::{ACCOUNT}:federated-user/bob"),
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/ranker", f"arn:aws:sts::{ACCOUNT}:assumed-role/ranker"),  # no session
    ],
)
def test_an_assumed_role_is_its_role_whatever_the_session(arn: str, normalized: str) -> None:
    assert normalized_principal(arn) == normalized


def test_the_identity_takes_the_principal_and_the_api_key_id_from_the_event() -> None:
    both = CallerIdentity.from_request_identity({"userArn": RANKER, "apiKeyId": "k1", "accountId": ACCOUNT})
    assert both == CallerIdentity(RANKER, "k1")
    assert CallerIdentity.from_request_identity({"userArn": None, "apiKeyId": ""}) == CallerIdentity()
    assert CallerIdentity.from_request_identity({}) == CallerIdentity()


def test_no_policy_lets_every_caller_call_every_model_in_every_mode() -> None:
    assert permitted_modes(None, CallerIdentity(), "iris") == EVERY_MODE == {"sync", "async"}


def test_a_caller_gets_the_union_of_the_rules_that_name_it() -> None:
    rules = policy()
    assert permitted_modes(rules, role_session("ranker"), "iris") == {"sync"}
    assert permitted_modes(rules, role_session("ranker", "refreshed"), "churn") == {"async"}
    assert permitted_modes(rules, role_session("batch-nightly"), "churn") == {"sync", "async"}
    assert permitted_modes(rules, role_session("batch-nightly"), "iris") == {"async"}
    assert permitted_modes(rules, CallerIdentity(api_key_id="a1b2c3d4e5"), "anything") == {"sync"}
    # An IAM caller with a key (an IAM stage that requires keys) gets both its role's and its key's rules.
    assert permitted_modes(rules, CallerIdentity(RANKER, "a1b2c3d4e5"), "churn") == {"sync", "async"}


@pytest.mark.parametrize(
    "caller",
    [
        CallerIdentity(),
        role_session("ranker-two"),  # the pattern is the whole ARN, not a prefix
        role_session("other"),
        CallerIdentity(principal="arn:aws:iam::210987654321:role/ranker"),  # another account
        CallerIdentity(api_key_id="A1B2C3D4E5"),  # key ids are compared exactly
        CallerIdentity(principal=f"arn:aws:iam::{ACCOUNT}:user/alice/extra"),
    ],
    ids=["anonymous", "longer-role", "other-role", "other-account", "key-case", "longer-user"],
)
def test_a_caller_no_rule_names_may_call_nothing(caller: CallerIdentity) -> None:
    assert permitted_modes(policy(), caller, "iris") == frozenset()
    with pytest.raises(CallerNotAllowedError, match=r"may not call model 'iris' \(caller policy\)"):
        require_mode(permitted_modes(policy(), caller, "iris"), "iris")


def test_a_mode_the_caller_lacks_is_refused_naming_model_and_mode() -> None:
    permitted = permitted_modes(policy(), role_session("ranker"), "iris")
    require_mode(permitted, "iris")
    require_mode(permitted, "iris", "sync")
    with pytest.raises(CallerNotAllowedError, match="may not call model 'iris' asynchronously"):
        require_mode(permitted, "iris", "async")


def test_a_pattern_matches_regex_characters_literally() -> None:
    dotted = policy([{"principal": f"arn:aws:iam::{ACCOUNT}:role/a.b", "models": {"iris": ["sync"]}}])
    assert permitted_modes(dotted, CallerIdentity(principal=f"arn:aws:iam::{ACCOUNT}:role/a.b"), "iris") == {"sync"}
    assert permitted_modes(dotted, CallerIdentity(principal=f"arn:aws:iam::{ACCOUNT}:role/aXb"), "iris") == set()


def test_the_environment_value_reads_back_as_the_same_policy() -> None:
    original = policy()
    value = original.to_env()
    assert " " not in value
    assert caller_policy_from_env(value, ConfigReader("env").fail) == original
    assert caller_policy_from_env(None, ConfigReader("env").fail) is None
    assert caller_policy_from_env("", ConfigReader("env").fail) is None


BAD: list[tuple[Any, str]] = [
    ({"principal": RANKER}, "caller_policy: must be a list of caller rules"),
    ([], "caller_policy: an empty policy would deny every caller"),
    (["x"], "caller_policy[0]: must be an object"),
    ([{"models": {"iris": ["sync"]}}], "caller_policy[0]: must name its caller by exactly one"),
    ([{"principal": RANKER, "api_key_id": "k", "models": {"iris": ["sync"]}}], "caller_policy[0]: must name its"),
    ([{"principal": None, "models": {"iris": ["sync"]}}], "caller_policy[0].principal: None is not an IAM"),
    ([{"principal": "ranker", "models": {"iris": ["sync"]}}], "caller_policy[0].principal: 'ranker' is not an IAM"),
    (
        [{"principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/ranker/s", "models": {"iris": ["sync"]}}],
        "caller_policy[0].principal: 'arn:aws:sts::123456789012:assumed-role/ranker/s' is not an IAM",
    ),
    (
        [{"principal": f"arn:aws:iam::{ACCOUNT}:role/team/ranker", "models": {"iris": ["sync"]}}],
        "caller_policy[0].principal: 'arn:aws:iam::123456789012:role/team/ranker': name a role without its path",
    ),
    ([{"api_key_id": "not-an-id", "models": {"iris": ["sync"]}}], "caller_policy[0].api_key_id: 'not-an-id' is not"),
    ([{"api_key_id": "k", "models": {}}], "caller_policy[0].models: must map model names"),
    ([{"api_key_id": "k", "models": ["iris"]}], "caller_policy[0].models: must map model names"),
    ([{"api_key_id": "k", "models": {"iris": "sync"}}], "caller_policy[0].models.iris: 'sync' must be a non-empty"),
    ([{"api_key_id": "k", "models": {"iris": []}}], "caller_policy[0].models.iris: [] must be a non-empty"),
    ([{"api_key_id": "k", "models": {"iris": ["stream"]}}], "caller_policy[0].models.iris: ['stream'] must be"),
    ([{"api_key_id": "k", "models": {"nope": ["sync"]}}], "caller_policy[0].models.nope: no model named 'nope'"),
    ([{"api_key_id": "k", "models": {"iris": ["sync"]}, "quota": 5}], "caller_policy[0].quota: unknown field"),
]


@pytest.mark.parametrize(("raw", "message"), BAD, ids=[message.split(": ", 1)[1][:40] for _, message in BAD])
def test_an_invalid_policy_is_refused_naming_its_field(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        policy(raw)
    assert str(raised.value).startswith("stages.json: ")
    assert message in str(raised.value)


def test_the_router_reads_its_policy_and_cache_bound_from_the_environment() -> None:
    settings = RouterSettings.from_env({"CALLER_POLICY": policy().to_env(), "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128"})
    assert settings.caller_policy == policy()
    assert settings.last_good_max_bytes == 8 * 1024 * 1024
    defaults = RouterSettings.from_env({})
    assert (defaults.caller_policy, defaults.last_good_max_bytes) == (None, 64 * 1024 * 1024)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CALLER_POLICY": "{not json"}, "CALLER_POLICY: is not JSON"),
        ({"CALLER_POLICY": '[{"api_key_id": "k", "models": {"iris": ["x"]}}]'}, "CALLER_POLICY[0].models.iris"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "lots"}, "must be a whole number of megabytes"),
        ({"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "0"}, "must be positive"),
    ],
)
def test_a_bad_policy_or_memory_size_in_the_environment_is_a_settings_error(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(SettingsError, match=message.replace("[", r"\[")):
        RouterSettings.from_env(environ)
