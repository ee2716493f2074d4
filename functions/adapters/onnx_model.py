"""An ONNX model behind its declared Open Inference Protocol signature; the session is created once.

A prediction is three steps so the dynamic batcher (:mod:`serving.batching`) can put one
onnxruntime call between many requests: :meth:`OnnxModel.prepare` turns a validated request into arrays,
:meth:`OnnxModel.run` is the only place onnxruntime runs, :meth:`OnnxModel.respond` builds the OIP answer.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from functions.domain.errors import InvalidRequestError, ModelFailedError
from functions.domain.validation import InferRequest

if TYPE_CHECKING:
    from pathlib import Path

    from functions.config.model_types import ModelConfig

logger = logging.getLogger(__name__)

NUMPY_DTYPES: Final[dict[str, Any]] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
CPU_PROVIDER: Final[str] = "CPUExecutionProvider"
# What the server picks on its own, best first. TensorRT is left out: onnxruntime-gpu lists it as available
# even without the TensorRT libraries, and its engine build would outlast SageMaker's 3-minute /ping budget.
PREFERRED_PROVIDERS: Final[tuple[str, ...]] = ("CUDAExecutionProvider", CPU_PROVIDER)


class ModelSignatureError(RuntimeError):
    """The ONNX file does not have the inputs or outputs its config declares."""


class ProviderError(ValueError):
    """The execution providers asked for are not in this onnxruntime build, or the session could not use them."""


def requested_providers(requested: str | None) -> list[str]:
    """The providers a comma-separated ``SERVING_PROVIDERS`` value names, in order ([] when unset)."""
    return [name.strip() for name in (requested or "").split(",") if name.strip()]


def choose_providers(requested: str | None, available: Sequence[str]) -> list[str]:
    """The execution providers to use, best first, always ending with the CPU provider.

    ``requested`` is a comma-separated list (``SERVING_PROVIDERS``); empty or None picks the best of
    :data:`PREFERRED_PROVIDERS` this onnxruntime build has.

    Example:
        >>> choose_providers(None, ["CUDAExecutionProvider", "CPUExecutionProvider"])
        ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
    names = requested_providers(requested)
    if not names:
        names = [name for name in PREFERRED_PROVIDERS if name in available]
    missing = [name for name in names if name not in available]
    if missing:
        raise ProviderError(
            f"execution provider {missing[0]!r} is not available in this onnxruntime build "
            f"(available: {', '.join(available)})"
        )
    # onnxruntime places the nodes another provider cannot run on the CPU provider, so it must be listed.
    return [*dict.fromkeys([*names, CPU_PROVIDER])]


@dataclass(frozen=True)
class PreparedRequest:
    """A validated request as the arrays onnxruntime takes; ``rows`` is its size along the batch dim."""

    request: InferRequest
    feeds: dict[str, Any]
    output_names: tuple[str, ...]
    rows: int

    @property
    def batch_key(self) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
        """Requests with equal keys can be stacked along the batch dim into one run."""
        return tuple((name, array.dtype.str, array.shape[1:]) for name, array in sorted(self.feeds.items()))


class OnnxModel:
    """Runs validated OIP requests through one onnxruntime session.

    Example:
        >>> model = OnnxModel(config.model("iris"), Path("layers/models/iris/model.onnx"))
        >>> model.predict(request)["outputs"][0]["name"]
        'label'
    """

    def __init__(
        self,
        config: ModelConfig,
        model_path: Path,
        *,
        intra_op_threads: int = 0,
        providers: list[str] | None = None,
        required_providers: Sequence[str] = (),
    ) -> None:
        """``required_providers``: providers the session must end up running on (those the operator configured);
        any of them missing raises :class:`ProviderError` instead of running on what onnxruntime fell back to."""
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=providers or [CPU_PROVIDER]
        )
        self._check_providers(providers or [CPU_PROVIDER], required_providers)
        self._check_signature()
        self.all_output_names: tuple[str, ...] = tuple(spec.name for spec in config.outputs)
        self.batchable = self._has_free_batch_dim()
        logger.info(
            "model %r: providers %s, free batch dim: %s", config.name, self.session.get_providers(), self.batchable
        )

    def _check_providers(self, asked: Sequence[str], required: Sequence[str]) -> None:
        """onnxruntime-gpu lists CUDA as available even when the CUDA libraries fail to load; the session then
        logs an error and quietly runs on the CPU. Only the session's own list says what it really runs on."""
        active = self.session.get_providers()
        missing = [name for name in required if name not in active]
        if missing:
            raise ProviderError(
                f"model {self.config.name!r}: execution provider {missing[0]!r} was configured (SERVING_PROVIDERS) "
                f"but the session could not use it and would run on {', '.join(active)}: onnxruntime failed to "
                "load it (for CUDA: the CUDA 12 and cuDNN 9 libraries onnxruntime-gpu links against, and a "
                "visible GPU); refusing to serve on a fallback"
            )
        dropped = [name for name in asked if name not in active]
        if dropped:
            logger.warning("model %r: providers %s unusable, running on %s", self.config.name, dropped, active)

    def _check_signature(self) -> None:
        session_inputs = {node.name for node in self.session.get_inputs()}
        session_outputs = {node.name for node in self.session.get_outputs()}
        for spec in self.config.inputs:
            if spec.name not in session_inputs:
                raise ModelSignatureError(f"model {self.config.name!r}: the ONNX graph has no input {spec.name!r}")
        for spec in self.config.outputs:
            if spec.name not in session_outputs:
                raise ModelSignatureError(f"model {self.config.name!r}: the ONNX graph has no output {spec.name!r}")

    def _has_free_batch_dim(self) -> bool:
        """Whether requests can be stacked along dim 0: declared free in the config and in the graph itself."""
        declared = all(spec.has_free_batch_dim for spec in (*self.config.inputs, *self.config.outputs))
        # The graph says a dim is free with a symbolic name (str) or no value (None); a number fixes it.
        graph_nodes = {node.name: node for node in (*self.session.get_inputs(), *self.session.get_outputs())}
        in_graph = all(
            bool(graph_nodes[spec.name].shape) and not isinstance(graph_nodes[spec.name].shape[0], int)
            for spec in (*self.config.inputs, *self.config.outputs)
        )
        return declared and in_graph

    def predict(self, request: InferRequest) -> dict[str, Any]:
        prepared = self.prepare(request)
        results = self.run(prepared.output_names, prepared.feeds)
        return self.respond(prepared, dict(zip(prepared.output_names, results, strict=True)))

    def prepare(self, request: InferRequest) -> PreparedRequest:
        """Raises InvalidRequestError when a value cannot be held by its datatype."""
        document = request.document
        feeds = {entry["name"]: self._to_array(entry) for entry in document["inputs"]}
        output_names = request.requested_outputs or self.all_output_names
        return PreparedRequest(request, feeds, output_names, request.batch_rows)

    def run(self, output_names: Sequence[str], feeds: Mapping[str, Any]) -> list[Any]:
        """The one onnxruntime call; it releases the GIL while it runs.

        Raises :class:`ModelFailedError` with the status a container answers for it: 422 when onnxruntime
        rejected the request's values (INVALID_ARGUMENT, e.g. an index outside a table the model looks up),
        500 when the model itself failed. Through SageMaker that is a ModelError with that original status,
        which the router maps to 422 or 502; the in-Lambda tier raises it to the router directly.
        """
        try:
            results: list[Any] = self.session.run(list(output_names), dict(feeds))
        except InvalidArgument as error:
            message = f"model {self.config.name!r} cannot process the request's values: {error}"
            raise ModelFailedError(message, original_status=422) from error
        except Exception as error:  # onnxruntime's other failure classes (Fail, RuntimeException, EPFail...)
            message = f"model {self.config.name!r} failed: {type(error).__name__}: {error}"
            raise ModelFailedError(message, original_status=500) from error
        return results

    def respond(self, prepared: PreparedRequest, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """The OIP answer to ``prepared`` from ``outputs`` (name → array; may hold more than it asked for)."""
        response: dict[str, Any] = {"model_name": self.config.name, "model_version": self.config.version}
        if prepared.request.request_id is not None:
            response["id"] = prepared.request.request_id
        response["outputs"] = [self._to_output(name, outputs[name]) for name in prepared.output_names]
        return response

    def _to_array(self, entry: dict[str, Any]) -> Any:
        try:
            return np.asarray(entry["data"], dtype=NUMPY_DTYPES[entry["datatype"]]).reshape(entry["shape"])
        except (ValueError, TypeError, OverflowError) as error:
            raise InvalidRequestError(
                f"input {entry['name']!r}: cannot be read as {entry['datatype']}: {error}"
            ) from error

    def _to_output(self, name: str, array: Any) -> dict[str, Any]:
        datatype = next(spec.datatype for spec in self.config.outputs if spec.name == name)
        values = np.asarray(array)
        data = [value.decode() if isinstance(value, bytes) else value for value in values.ravel().tolist()]
        return {"name": name, "datatype": datatype, "shape": list(values.shape), "data": data}
