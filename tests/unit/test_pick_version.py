"""pick_version: weights hold over many keys, a key always meets the same version, a pin wins."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import pytest

from functions.config.model_types import ModelConfig
from functions.config.models import DEFAULT_CONFIG_PATH, parse_models_config
from functions.domain.errors import ModelNotFoundError
from functions.domain.model_versions import model_versions, pick_version

KEYS = 20_000
V2 = {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}}
V3_SHADOW = {
    "version": "3",
    "route": {"sync": "serverless", "serverless_endpoint": "iris-v3"},
    "shadow": {"sample_rate": 0.5},
}


def iris(**fields: Any) -> ModelConfig:
    document = copy.deepcopy(json.loads(DEFAULT_CONFIG_PATH.read_text()))
    document["models"][0].update(fields)
    return parse_models_config(document).by_name["iris"]


def within_binomial_tolerance(hits: int, n: int, p: float) -> bool:
    """|observed share - p| <= 4 sigma, sigma = sqrt(p (1 - p) / n): a correct pick fails ~1 run in 16,000."""
    return abs(hits / n - p) <= 4 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize(("weights", "share_of_2"), [((90, 10), 0.10), ((50, 50), 0.50), ((99, 1), 0.01)])
def test_weights_hold_within_four_sigma_over_distinct_keys(weights: tuple[int, int], share_of_2: float) -> None:
    model = iris(versions=[V2, V3_SHADOW], traffic={"1": weights[0], "2": weights[1]})
    picks = [pick_version(model, caller="alice", sticky_key=f"key-{n}", body=b"{}").version for n in range(KEYS)]
    assert "3" not in picks  # a shadow carries no traffic
    assert within_binomial_tolerance(picks.count("2"), KEYS, share_of_2)


def test_bodies_without_a_key_spread_by_their_hash() -> None:
    model = iris(versions=[V2], traffic={"1": 90, "2": 10})
    picks = [pick_version(model, caller=None, sticky_key=None, body=b'{"id":"%d"}' % n).version for n in range(KEYS)]
    assert within_binomial_tolerance(picks.count("2"), KEYS, 0.10)


def test_the_same_key_caller_and_body_always_meet_the_same_version() -> None:
    model = iris(versions=[V2], traffic={"1": 50, "2": 50})
    for n in range(200):
        first = pick_version(model, caller="alice", sticky_key=f"k{n}", body=b"a").version
        again = {pick_version(model, caller="alice", sticky_key=f"k{n}", body=b"b%d" % m).version for m in range(5)}
        assert again == {first}  # the sticky key decides, not the body
        retry = {pick_version(model, caller="bob", sticky_key=None, body=b"same %d" % n).version for _ in range(3)}
        assert len(retry) == 1


def test_the_caller_is_part_of_the_hash() -> None:
    model = iris(versions=[V2], traffic={"1": 50, "2": 50})
    by_caller = {
        caller: [pick_version(model, caller=caller, sticky_key=f"k{n}", body=b"").version for n in range(200)]
        for caller in ("alice", "bob")
    }
    assert by_caller["alice"] != by_caller["bob"]


def test_a_pin_wins_over_the_weights_even_for_an_unweighted_or_shadow_version() -> None:
    model = iris(versions=[V2, V3_SHADOW], traffic={"1": 100})
    assert {pick_version(model, caller="a", sticky_key=f"k{n}", body=b"", pinned="2").version for n in range(50)} == {
        "2"
    }
    assert pick_version(model, caller="a", sticky_key=None, body=b"", pinned="3").version == "3"
    assert {pick_version(model, caller="a", sticky_key=f"k{n}", body=b"").version for n in range(50)} == {"1"}


def test_an_unknown_pin_is_a_404_naming_the_versions() -> None:
    model = iris(versions=[V2])
    with pytest.raises(ModelNotFoundError, match=r"model 'iris' has no version '7' \(versions: '1', '2'\)"):
        pick_version(model, caller=None, sticky_key=None, body=b"", pinned="7")
    assert model_versions(model) == ("1", "2")


def test_for_version_serves_the_versions_route_and_artifact_with_the_models_contract() -> None:
    model = iris(versions=[{**V2, "artifact": "elsewhere.onnx"}])
    served = model.for_version(model.version_by_name["2"])
    assert (served.version, served.route.serverless_endpoint, served.artifact) == ("2", "iris-v2", "elsewhere.onnx")
    assert (served.inputs, served.limits, served.resilience) == (model.inputs, model.limits, model.resilience)
    assert model.for_version(model.versions[0]) is model
