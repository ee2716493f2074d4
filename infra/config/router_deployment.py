"""How a new router version reaches traffic: ``router.deployment``, shifted by CodeDeploy on the live alias.

``canary`` shifts ``percentage`` first and the rest after ``interval_minutes``; ``linear`` shifts
``percentage`` every ``interval_minutes``; ``all_at_once`` shifts everything once the pre-traffic hook passes.
CodeDeploy's custom Lambda configs take a whole percentage and whole minutes (TimeBasedCanary and
TimeBasedLinear in the CodeDeploy API reference); a traffic-shifting deployment may last at most two days, so
one interval may not exceed 2880 minutes.
"""

from __future__ import annotations

from typing import Any, Final

from infra.config.reader import StageReader
from infra.config.types import DEPLOYMENT_STRATEGIES, RouterDeploymentConfig

MAX_INTERVAL_MINUTES: Final[int] = 2880


def read_router_deployment(reader: StageReader, raw_value: Any, path: str) -> RouterDeploymentConfig:
    raw = reader.obj(raw_value, path, frozenset({"strategy", "percentage", "interval_minutes"}))
    strategy = reader.choice(reader.field(raw, "strategy", path), f"{path}.strategy", DEPLOYMENT_STRATEGIES)
    if strategy == "all_at_once":
        extra = sorted({"percentage", "interval_minutes"} & set(raw))
        if extra:
            raise reader.fail(f"{path}.{extra[0]}", "means nothing with strategy all_at_once; remove it")
        return RouterDeploymentConfig(strategy, 100, 0)
    percentage = reader.integer(reader.field(raw, "percentage", path), f"{path}.percentage", 1, 99)
    interval = reader.integer(
        reader.field(raw, "interval_minutes", path), f"{path}.interval_minutes", 1, MAX_INTERVAL_MINUTES
    )
    return RouterDeploymentConfig(strategy, percentage, interval)
