"""The local rollout walkthrough's config is the default config plus iris's versions, never a drifting copy."""

from __future__ import annotations

import json
from pathlib import Path

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config

ROLLOUT_CONFIG = Path(__file__).resolve().parents[2] / "local" / "models.rollout.json"
VERSION_KEYS = ("versions", "traffic")


def test_the_rollout_config_is_the_default_plus_iris_versions_and_traffic() -> None:
    rollout = json.loads(ROLLOUT_CONFIG.read_text())
    default = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in rollout["models"] if model["name"] == "iris"]
    assert [entry["version"] for entry in iris["versions"]] == ["2", "3"]
    assert iris["traffic"] == {"1": 90, "2": 10}
    for key in VERSION_KEYS:
        del iris[key]
    assert rollout == default


def test_the_rollout_config_loads_with_a_shadow_version() -> None:
    iris = load_models_config(ROLLOUT_CONFIG).by_name["iris"]
    assert [(v.version, v.weight, v.shadow is not None) for v in iris.versions] == [
        ("1", 90, False),
        ("2", 10, False),
        ("3", 0, True),
    ]
