"""What the planner reads from the stage config: prices, the router's shape, each model's endpoint settings
and p99 target. Without a stage, the ``defaults`` section alone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.config.prices import OVERRIDE_FIELD, RegionPrices, region_prices
from ops.planner.async_gpu import AsyncShape
from ops.planner.serverless import LAMBDA_ACCOUNT_CONCURRENCY

STAGES_PATH = Path(__file__).resolve().parents[2] / "infra" / "stages.json"


class SettingsError(ValueError):
    """The stage is not in the stage config."""


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` deep-merged onto ``base``, as the stage loader merges a stage onto the defaults."""
    result = dict(base)
    for key, value in over.items():
        result[key] = (
            merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


@dataclass(frozen=True, slots=True)
class PlanSettings:
    stage: str | None
    prices: RegionPrices
    router_memory_mb: int
    router_max_concurrency: int
    serverless: dict[str, dict[str, Any]]  # per model, the stage's entry merged onto the defaults
    serverless_defaults: dict[str, Any]
    async_shape: AsyncShape
    default_target_ms: float
    targets_ms: dict[str, float]

    def target_ms(self, model: str) -> float:
        return self.targets_ms.get(model, self.default_target_ms)

    def serverless_for(self, model: str) -> dict[str, Any]:
        return self.serverless.get(model, self.serverless_defaults)


def load_settings(stage: str | None, path: Path = STAGES_PATH) -> PlanSettings:
    raw = json.loads(path.read_text())
    config: dict[str, Any] = raw["defaults"]
    if stage is not None:
        if stage not in raw["stages"]:
            raise SettingsError(f"{path}: no stage {stage!r} (stages: {', '.join(sorted(raw['stages']))})")
        config = merged(config, raw["stages"][stage])
    router = config["router"]
    defaults = config["serverless_endpoint_defaults"]
    async_config = config["async_endpoint_defaults"]
    slo = config["slo"]
    return PlanSettings(
        stage=stage,
        prices=region_prices(config["region"], config.get(OVERRIDE_FIELD)),
        router_memory_mb=int(router["memory_mb"]),
        router_max_concurrency=int(router.get("reserved_concurrency") or LAMBDA_ACCOUNT_CONCURRENCY),
        serverless={name: merged(defaults, entry) for name, entry in config.get("serverless_endpoints", {}).items()},
        serverless_defaults=defaults,
        async_shape=AsyncShape(
            instance_type=async_config["instance_type"],
            per_instance=int(async_config["max_concurrent_invocations_per_instance"]),
            max_instances=int(async_config["max_instances"]),
            backlog_target=float(async_config["backlog_target_per_instance"]),
        ),
        default_target_ms=float(slo["latency_target_ms"]),
        targets_ms={
            name: float(entry["latency_target_ms"])
            for name, entry in slo.get("models", {}).items()
            if "latency_target_ms" in entry
        },
    )
