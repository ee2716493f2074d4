"""``router.deployment`` in the stage config: prod canaries 10% for 5 minutes, dev shifts at once; every
wrong value is refused naming its field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.models import load_models_config
from infra.config.loader import DEFAULT_STAGES_PATH, parse_stage_config
from infra.config.types import RouterDeploymentConfig, StageConfig, StageConfigError

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())
FIELD = "stages.prod.router.deployment"


def parse(document: dict[str, Any], stage: str = "prod") -> StageConfig:
    return parse_stage_config(document, stage, MODELS, "stages.json")


def with_deployment(deployment: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["router"]["deployment"] = deployment
    return document


def canary(**fields: Any) -> dict[str, Any]:
    return {"strategy": "canary", "percentage": 10, "interval_minutes": 5, **fields}


def test_prod_canaries_ten_percent_for_five_minutes_and_dev_shifts_at_once() -> None:
    assert parse(DOCUMENT, "prod").router.deployment == RouterDeploymentConfig("canary", 10, 5)
    assert parse(DOCUMENT, "dev").router.deployment == RouterDeploymentConfig("all_at_once", 100, 0)


def test_linear_takes_a_step_and_an_interval() -> None:
    deployment = parse(with_deployment(canary(strategy="linear", percentage=25, interval_minutes=2))).router
    assert deployment.deployment == RouterDeploymentConfig("linear", 25, 2)


def test_without_a_deployment_section_the_stage_is_refused() -> None:
    document = copy.deepcopy(DOCUMENT)
    del document["defaults"]["router"]["deployment"]
    with pytest.raises(StageConfigError, match=r"stages\.dev\.router\.deployment: is required"):
        parse(document, "dev")


INVALID: list[tuple[Any, str]] = [
    ("canary", f"{FIELD}: must be an object"),
    (canary(strategy="blue_green"), f"{FIELD}.strategy: 'blue_green' is not one of canary, linear, all_at_once"),
    (canary(percentage=0), f"{FIELD}.percentage: 0 is outside 1..99"),
    (canary(percentage=100), f"{FIELD}.percentage: 100 is outside 1..99"),
    (canary(percentage=12.5), f"{FIELD}.percentage: must be a whole number"),
    (canary(interval_minutes=0), f"{FIELD}.interval_minutes: 0 is outside 1..2880"),
    (canary(interval_minutes=2881), f"{FIELD}.interval_minutes: 2881 is outside 1..2880"),
    ({"strategy": "canary", "percentage": 10}, f"{FIELD}.interval_minutes: is required"),
    ({"strategy": "linear", "interval_minutes": 1}, f"{FIELD}.percentage: is required"),
    (canary(bake_minutes=3), f"{FIELD}.bake_minutes: unknown field"),
    (canary(strategy="all_at_once"), f"{FIELD}.interval_minutes: means nothing with strategy all_at_once"),
    ({"strategy": "all_at_once", "percentage": 100}, f"{FIELD}.percentage: means nothing with strategy all_at_once"),
]


@pytest.mark.parametrize(("deployment", "message"), INVALID, ids=[message[len(FIELD) :] for _, message in INVALID])
def test_invalid_deployment_is_refused_naming_the_field(deployment: Any, message: str) -> None:
    with pytest.raises(StageConfigError) as raised:
        parse(with_deployment(deployment))
    assert message in str(raised.value)
