"""The stage-config change a plan recommends, as a unified diff of infra/stages.json and functions/models.json.

Both files are loaded, changed in memory and dumped again; the diff is between the two dumps (so it shows only
the changed fields, on JSON indented by 2), and neither file is written.
"""

from __future__ import annotations

import copy
import difflib
import json
from pathlib import Path
from typing import Any

from ops.planner.plan import Plan
from ops.planner.router import RouterOption
from ops.planner.settings import STAGES_PATH

MODELS_PATH = Path(__file__).resolve().parents[2] / "functions" / "models.json"
SYNC_TARGET = {"lambda": "lambda", "serverless": "serverless"}  # async: the model keeps its sync route


def _cron(hour: int) -> str:
    return f"cron(0 {hour} * * ? *)"


def router_change(option: RouterOption) -> dict[str, Any]:
    """The ``router`` fields that realise a router option."""
    if option.strategy == "fixed":
        return {"provisioned_concurrency": int(option.steps.levels[0]), "provisioned_concurrency_autoscaling": None}
    if option.strategy == "target_tracking":
        return {
            "provisioned_concurrency": option.min_capacity,
            "provisioned_concurrency_autoscaling": {
                "min_capacity": option.min_capacity,
                "max_capacity": option.max_capacity,
                "target_utilization": option.target_utilization,
                "schedule": [],
            },
        }
    levels = option.hourly_levels
    changes = [hour for hour in range(24) if levels[hour] != levels[hour - 1]] or [0]
    return {
        "provisioned_concurrency": levels[0],
        "provisioned_concurrency_autoscaling": {
            "min_capacity": min(levels),
            "max_capacity": max(levels),
            "target_utilization": None,
            "schedule": [
                {
                    "name": f"hour-{hour:02d}",
                    "cron": _cron(hour),
                    "min_capacity": levels[hour],
                    "max_capacity": levels[hour],
                }
                for hour in changes
            ],
        },
    }


def _diff(before: Any, after: Any, name: str) -> str:
    old = json.dumps(before, indent=2).splitlines(keepends=True)
    new = json.dumps(after, indent=2).splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"a/{name}", f"b/{name}"))


def stage_diff(plan: Plan, stage: str, stages_path: Path = STAGES_PATH, models_path: Path = MODELS_PATH) -> str:
    stages = json.loads(stages_path.read_text())
    models = json.loads(models_path.read_text())
    new_stages, new_models = copy.deepcopy(stages), copy.deepcopy(models)
    entry = new_stages["stages"][stage]
    entry["router"] = {**entry.get("router", {}), **router_change(plan.recommended.router)}
    known = {model["name"]: model for model in new_models["models"]}
    for name, model_plan in plan.models.items():
        option = model_plan.recommended
        if name not in known:
            continue  # a model of the user's trace that this repository does not configure
        route = known[name]["route"]
        if option.tier in SYNC_TARGET:
            route["sync"] = SYNC_TARGET[option.tier]
        if option.tier == "serverless":
            endpoint = route.get("serverless_endpoint") or name
            entry.setdefault("serverless_endpoints", {})[endpoint] = {
                **entry.get("serverless_endpoints", {}).get(endpoint, {}),
                "memory_mb": option.memory_mb,
                "max_concurrency": option.max_concurrency,
                "provisioned_concurrency": option.provisioned_concurrency,
            }
    return _diff(stages, new_stages, "infra/stages.json") + _diff(models, new_models, "functions/models.json")
