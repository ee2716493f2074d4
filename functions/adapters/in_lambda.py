"""The in-Lambda tier: small ONNX models run inside the router with onnxruntime, no endpoint at all.

onnxruntime and numpy come from the onnxruntime layer, the model file from the model layer (both mounted
under /opt, the layer keeping the repo path of the model's ``artifact``). Nothing here is imported until a
``lambda``-routed model is asked for, so the other routes' cold starts never pay for onnxruntime (~100 ms).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.common.errors import EndpointRejectedError

if TYPE_CHECKING:
    from functions.routing.validation import InferRequest


class InLambdaBackend:
    """One onnxruntime session per model, created on the model's first request and kept for the environment.

    Example:
        >>> backend = InLambdaBackend(model_root=Path("/opt"))
        >>> backend.predict(request)  # request validated by functions.routing.validation
    """

    def __init__(self, model_root: Path, intra_op_threads: int = 1) -> None:
        self.model_root = model_root
        self.intra_op_threads = intra_op_threads
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _model(self, request: InferRequest) -> Any:
        config = request.model
        with self._lock:
            model = self._models.get(config.name)
            if model is None:
                if config.artifact is None:
                    raise EndpointRejectedError(f"model {config.name!r} runs in the router but has no artifact")
                path = self.model_root / config.artifact
                if not path.is_file():
                    raise EndpointRejectedError(
                        f"model {config.name!r}: {path} is missing (is the model layer attached?)"
                    )
                from functions.serving.onnx_model import OnnxModel

                model = OnnxModel(config, path, intra_op_threads=self.intra_op_threads)
                self._models[config.name] = model
        return model

    def predict(self, request: InferRequest) -> bytes:
        document: dict[str, Any] = self._model(request).predict(request)
        return json.dumps(document, separators=(",", ":")).encode("utf-8")
