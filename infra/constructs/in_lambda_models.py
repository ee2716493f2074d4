"""InLambdaModels: what a router needs to run ``lambda``-routed models itself.

Two layers: onnxruntime + numpy for arm64 and the router's Python (built by ``make layers``, no Docker), and
the models' files at their config paths (``/opt/<artifact>``). Attached only when some model's route is
``lambda``: the other routes never carry onnxruntime.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.config.model_types import ModelConfig
from infra.constructs.python_function import ARCHITECTURE, RUNTIME
from infra.model_package import ONNXRUNTIME_LAYER_ZIP, stage_model_layer

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
DEFAULT_ONNXRUNTIME_LAYER: Final[Path] = ONNXRUNTIME_LAYER_ZIP
# Lambda extracts layers under /opt; the model layer keeps each artifact's repo path below it.
MODEL_ROOT: Final[str] = "/opt"


class InLambdaModels(Construct):
    """Props: models (the ``lambda``-routed ones), onnxruntime_layer_zip. Attributes: ``layers``, ``environment``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: Sequence[ModelConfig],
        onnxruntime_layer_zip: Path = DEFAULT_ONNXRUNTIME_LAYER,
    ) -> None:
        super().__init__(scope, construct_id)
        if not models:
            raise ValueError(f"InLambdaModels {construct_id}: no lambda-routed model to serve")
        if not onnxruntime_layer_zip.is_file():
            raise FileNotFoundError(
                f"{onnxruntime_layer_zip} is missing: models {', '.join(m.name for m in models)} run inside the "
                "router and need the onnxruntime layer; build it with `make layers`"
            )
        for model in models:
            if model.artifact is None:
                raise ValueError(f"InLambdaModels {construct_id}: model {model.name!r} has no artifact")
        staging = stage_model_layer(models, Path(tempfile.mkdtemp(prefix="inference-router-model-layer-")))
        compatibility = {"compatible_architectures": [ARCHITECTURE], "compatible_runtimes": [RUNTIME]}
        self.layers = [
            lambda_.LayerVersion(
                self,
                "OnnxRuntime",
                code=lambda_.Code.from_asset(str(onnxruntime_layer_zip)),
                description="onnxruntime + numpy for the in-Lambda model tier (manylinux aarch64)",
                **compatibility,  # type: ignore[arg-type]
            ),
            lambda_.LayerVersion(
                self,
                "Models",
                code=lambda_.Code.from_asset(str(staging)),
                description=f"Model files for {layer_contents(models)}",
                **compatibility,  # type: ignore[arg-type]
            ),
        ]
        self.environment = {"MODEL_ROOT": MODEL_ROOT}


def layer_contents(models: Sequence[ModelConfig]) -> str:
    """The model versions a layer holds: ``digits v1, iris v2``."""
    return ", ".join(f"{model.name} v{model.version}" for model in models)
