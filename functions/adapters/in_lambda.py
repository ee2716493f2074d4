"""The in-Lambda tier: small ONNX models run inside the router with onnxruntime, no endpoint at all.

onnxruntime and numpy come from the onnxruntime layer, the model file from the model layer (both mounted
under /opt, the layer keeping the repo path of the model's ``artifact``). Nothing here is imported until a
``lambda``-routed model is asked for, so the other routes' cold starts never pay for onnxruntime (~100 ms),
except where :meth:`InLambdaBackend.warm` is called at init (provisioned concurrency: the init runs before
any request, so no request pays for it).

Failures map to the domain's errors, never to an unhandled Lambda error: the layer missing or the model not
loading is :class:`EndpointRejectedError` (502, a deployment to fix, so no Retry-After); a run onnxruntime
refuses is :class:`ModelFailedError` with the status a container would answer (422 for the request's values,
502 for the model's own failure), as the SageMaker route answers the same failure.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.domain.errors import EndpointRejectedError

if TYPE_CHECKING:
    from functions.config.model_types import ModelConfig
    from functions.domain.validation import InferRequest

logger = logging.getLogger(__name__)
# What warm() feeds a model's free dims: one row, so the first real run finds its buffers allocated.
_WARM_ROWS = 1


class InLambdaBackend:
    """One onnxruntime session per model, created on the model's first request (or by :meth:`warm`) and kept
    for the environment.

    Example:
        >>> backend = InLambdaBackend(model_root=Path("/opt"))
        >>> backend.predict(request)  # request validated by functions.domain.validation
    """

    def __init__(self, model_root: Path, intra_op_threads: int = 1) -> None:
        self.model_root = model_root
        self.intra_op_threads = intra_op_threads
        # By name and version: two versions of a model may run in the router, each from its own artifact.
        self._models: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _model(self, config: ModelConfig) -> Any:
        with self._lock:
            model = self._models.get((config.name, config.version))
            if model is None:
                model = self._load(config)
                self._models[config.name, config.version] = model
        return model

    def _load(self, config: ModelConfig) -> Any:
        """A session for ``config``; raises EndpointRejectedError naming what is missing or broken."""
        if config.artifact is None:
            raise EndpointRejectedError(f"model {config.name!r} runs in the router but has no artifact")
        path = self.model_root / config.artifact
        if not path.is_file():
            raise EndpointRejectedError(f"model {config.name!r}: {path} is missing (is the model layer attached?)")
        try:
            from functions.adapters.onnx_model import OnnxModel
        except ImportError as error:
            logger.error("in-Lambda model %r: onnxruntime cannot be imported: %s", config.name, error)
            raise EndpointRejectedError(
                f"model {config.name!r} runs in the router, but onnxruntime cannot be imported ({error}): "
                "is the onnxruntime layer attached? (built by `make layers`, attached by the templates)"
            ) from error
        try:
            return OnnxModel(config, path, intra_op_threads=self.intra_op_threads)
        except Exception as error:  # onnxruntime's load errors, a graph that does not match the config
            logger.error("in-Lambda model %r could not be loaded from %s: %s", config.name, path, error)
            raise EndpointRejectedError(
                f"model {config.name!r} could not be loaded from {path}: {type(error).__name__}: {error}"
            ) from error

    def loadable(self, config: ModelConfig) -> bool:
        """Whether the model's session is loaded, or its artifact is there to load (its readiness)."""
        if (config.name, config.version) in self._models:
            return True
        return config.artifact is not None and (self.model_root / config.artifact).is_file()

    def predict(self, request: InferRequest) -> bytes:
        """The OIP answer; raises InvalidRequestError, ModelFailedError or EndpointRejectedError."""
        document: dict[str, Any] = self._model(request.model).predict(request)
        return json.dumps(document, separators=(",", ":")).encode("utf-8")

    def warm(self, models: Sequence[ModelConfig]) -> list[str]:
        """Load each model's session and run it once on zeros; return the names that warmed.

        Meant for init under provisioned concurrency, where no request waits for it. A model that cannot
        be loaded is logged and left for its first request to report (as a 502 naming the problem), so one
        broken model never stops the router's other routes from starting.
        """
        warmed: list[str] = []
        for config in models:
            try:
                model = self._model(config)
                feeds = _zeros(config)
                if feeds is not None:
                    model.run(list(model.all_output_names), feeds)
            except Exception as error:
                logger.warning("in-Lambda model %r not warmed: %s", config.name, error)
                continue
            warmed.append(config.name)
        return warmed


def _zeros(config: ModelConfig) -> dict[str, Any] | None:
    """A one-row input of zeros for every input (free dims become 1); None for a BYTES input."""
    import numpy as np

    from functions.adapters.onnx_model import NUMPY_DTYPES

    if any(spec.datatype == "BYTES" for spec in config.inputs):
        return None
    return {
        spec.name: np.zeros([_WARM_ROWS if dim == -1 else dim for dim in spec.shape], dtype=NUMPY_DTYPES[spec.datatype])
        for spec in config.inputs
    }
