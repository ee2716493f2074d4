"""The router's warm capacity in the stage config: PC autoscaling bounds, schedules, and SnapStart's exclusion."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.models import load_models_config
from infra.config.loader import DEFAULT_STAGES_PATH, parse_stage_config
from infra.config.types import RouterPcAutoscaling, ScheduledCapacity, StageConfig, StageConfigError

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())
SCALING = "stages.prod.router.provisioned_concurrency_autoscaling"


def parse(document: dict[str, Any], stage: str = "prod") -> StageConfig:
    return parse_stage_config(document, stage, MODELS, "stages.json")


def with_router(stage: str, **fields: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["stages"][stage].setdefault("router", {}).update(fields)
    return document


def with_scaling(**fields: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["router"]["provisioned_concurrency_autoscaling"].update(fields)
    return document


def action(name: str = "peak", cron: str = "cron(0 7 ? * MON-FRI *)", low: int = 2, high: int = 10) -> dict[str, Any]:
    return {"name": name, "cron": cron, "min_capacity": low, "max_capacity": high}


def test_prod_tracks_utilization_with_a_business_hours_floor_and_dev_uses_snapstart() -> None:
    prod, dev = parse(DOCUMENT, "prod").router, parse(DOCUMENT, "dev").router
    assert prod.provisioned_concurrency_autoscaling == RouterPcAutoscaling(
        2,
        20,
        0.7,
        (
            ScheduledCapacity("business-hours", "cron(0 7 ? * MON-FRI *)", 4, 20),
            ScheduledCapacity("nights-and-weekends", "cron(0 19 ? * MON-FRI *)", 2, 20),
        ),
    )
    assert not prod.snap_start
    assert dev.snap_start
    assert (dev.provisioned_concurrency, dev.provisioned_concurrency_autoscaling) == (0, None)


def test_schedule_alone_or_target_alone_is_enough() -> None:
    only_schedule = parse(with_scaling(target_utilization=None)).router.provisioned_concurrency_autoscaling
    assert only_schedule is not None
    assert only_schedule.target_utilization is None
    only_target = parse(with_scaling(schedule=[])).router.provisioned_concurrency_autoscaling
    assert only_target is not None
    assert only_target.schedule == ()


INVALID: list[tuple[dict[str, Any], str]] = [
    (with_scaling(min_capacity=3), f"{SCALING}: min_capacity 3 <= router.provisioned_concurrency 2 <= max_capacity"),
    (with_scaling(max_capacity=1), f"{SCALING}.min_capacity: 2 is above max_capacity 1"),
    (with_scaling(min_capacity=0), f"{SCALING}.min_capacity: 0 is outside at least 1"),
    (with_scaling(max_capacity=201), f"{SCALING}.max_capacity: 201 is above router.reserved_concurrency 200"),
    (with_scaling(target_utilization=0), f"{SCALING}.target_utilization: 0 is outside (0, 1]"),
    (with_scaling(target_utilization=1), f"{SCALING}.target_utilization: 1.0 is outside (0, 1)"),
    (with_scaling(target_utilization=None, schedule=[]), f"{SCALING}: scales on nothing"),
    (with_scaling(schedule={}), f"{SCALING}.schedule: must be a list"),
    (with_scaling(spare=1), f"{SCALING}.spare: unknown field"),
    (with_scaling(schedule=[action(), action()]), f"{SCALING}.schedule[1].name: 'peak' is used by an earlier"),
    (with_scaling(schedule=[action(name="peak hours")]), f"{SCALING}.schedule[0].name: 'peak hours' is not 1-64"),
    (with_scaling(schedule=[action(high=300)]), f"{SCALING}.schedule[0].max_capacity: 300 is above router.reserved"),
    (with_scaling(schedule=[action(low=0)]), f"{SCALING}.schedule[0].min_capacity: 0 is outside at least 1"),
    (with_scaling(schedule=[action(low=5, high=4)]), f"{SCALING}.schedule[0].min_capacity: 5 is above max_capacity 4"),
    (with_scaling(schedule=[action(cron="0 7 * * ? *")]), f"{SCALING}.schedule[0].cron: '0 7 * * ? *' is not a"),
    (with_scaling(schedule=[action(cron="rate(1 hour)")]), "schedule[0].cron: 'rate(1 hour)' is not a schedule"),
    (with_scaling(schedule=[action(cron="cron(0 7 ? * MON-FRI)")]), "schedule[0].cron: 'cron(0 7 ? * MON-FRI)' has 5"),
    (with_scaling(schedule=[action(cron="cron(0 25 ? * MON-FRI *)")]), "hours field '25' is not valid (0-23)"),
    (with_scaling(schedule=[action(cron="cron(61 7 ? * MON-FRI *)")]), "minutes field '61' is not valid (0-59)"),
    (with_scaling(schedule=[action(cron="cron(0 7 ? * FUNDAY *)")]), "day-of-week field 'FUNDAY' is not valid"),
    (with_scaling(schedule=[action(cron="cron(0 7 * * MON *)")]), "exactly one of day-of-month and day-of-week"),
    (with_scaling(schedule=[action(cron="cron(0 7 ? * ? *)")]), "exactly one of day-of-month and day-of-week"),
    (with_scaling(schedule=[action(cron="cron(0 7 ? 13 MON *)")]), "month field '13' is not valid (1-12)"),
    (
        with_router("dev", snap_start=True, provisioned_concurrency=1),
        "stages.dev.router.snap_start: true together with router.provisioned_concurrency 1: Lambda cannot use",
    ),
    (
        with_router("prod", snap_start=True),
        "stages.prod.router.snap_start: true together with router.provisioned_concurrency 2 and "
        "router.provisioned_concurrency_autoscaling",
    ),
    (with_router("dev", snap_start="yes"), "stages.dev.router.snap_start: must be true or false"),
]


@pytest.mark.parametrize(("document", "message"), INVALID, ids=[message[-40:] for _, message in INVALID])
def test_invalid_router_capacity_is_rejected_naming_the_field(document: dict[str, Any], message: str) -> None:
    stage = "dev" if "stages.dev." in message else "prod"
    with pytest.raises(StageConfigError) as raised:
        parse(document, stage)
    assert message in str(raised.value)
