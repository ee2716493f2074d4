"""A generated fleet of models for the scale test and bench: ``write_model_fleet(directory, 200)``.

Each model is iris under another name (``model-000``, ...), with a serverless and an async endpoint, sized in
every stage as iris is (prod: provisioned concurrency with autoscaling, the heaviest per-model template), and
with its artifact at an ``s3://`` URL, as a platform team's model registry would hold it. The serverless
max concurrency is divided so that the fleet fits the stage's region budget.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from functions.config.models import DEFAULT_CONFIG_PATH
from infra.config.loader import DEFAULT_STAGES_PATH

BASE_MODEL = "iris"
ARTIFACT_BUCKET = "model-registry-artifacts"


@dataclass(frozen=True, slots=True)
class ModelFleet:
    models_path: Path
    stages_path: Path
    model_names: tuple[str, ...]


def fleet_model_name(index: int) -> str:
    return f"model-{index:03d}"


def write_model_fleet(directory: Path, count: int) -> ModelFleet:
    """Write ``models.json`` and ``stages.json`` for ``count`` models into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    models_document: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    [base] = [model for model in models_document["models"] if model["name"] == BASE_MODEL]
    names = tuple(fleet_model_name(index) for index in range(count))
    models_document["models"] = [
        {
            **copy.deepcopy(base),
            "name": name,
            "route": {**base["route"], "serverless_endpoint": name, "async_endpoint": f"{name}-async"},
        }
        for name in names
    ]
    stages_document: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text(encoding="utf-8"))
    budget = int(stages_document["defaults"]["serverless_concurrency_budget"])
    for stage in stages_document["stages"].values():
        sizing = stage.get("serverless_endpoints", {}).get(BASE_MODEL, {})
        per_model = {**sizing, "max_concurrency": max(1, min(sizing.get("max_concurrency", 10), budget // count))}
        if "provisioned_concurrency" in per_model:
            per_model["provisioned_concurrency"] = min(
                per_model["provisioned_concurrency"], per_model["max_concurrency"]
            )
        if "pc_autoscaling" in per_model:
            scaling = dict(per_model["pc_autoscaling"])
            scaling["max_capacity"] = min(scaling["max_capacity"], per_model["max_concurrency"])
            scaling["min_capacity"] = min(scaling["min_capacity"], scaling["max_capacity"])
            per_model["pc_autoscaling"] = scaling
        stage["serverless_endpoints"] = {name: copy.deepcopy(per_model) for name in names}
        stage["models"] = {name: {"model_data_url": f"s3://{ARTIFACT_BUCKET}/{name}/model.tar.gz"} for name in names}
    models_path = directory / "models.json"
    stages_path = directory / "stages.json"
    models_path.write_text(json.dumps(models_document, indent=1), encoding="utf-8")
    stages_path.write_text(json.dumps(stages_document, indent=1), encoding="utf-8")
    return ModelFleet(models_path, stages_path, names)
