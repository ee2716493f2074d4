"""An ONNX model behind its declared Open Inference Protocol signature; the session is created once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import onnxruntime as ort

from functions.common.errors import InvalidRequestError
from functions.routing.validation import InferRequest

if TYPE_CHECKING:
    from pathlib import Path

    from functions.common.config import ModelConfig

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


class ModelSignatureError(RuntimeError):
    """The ONNX file does not have the inputs or outputs its config declares."""


class OnnxModel:
    """Runs validated OIP requests through one onnxruntime session.

    Example:
        >>> model = OnnxModel(config.model("iris"), Path("layers/models/iris/model.onnx"))
        >>> model.predict(request)["outputs"][0]["name"]
        'label'
    """

    def __init__(
        self, config: ModelConfig, model_path: Path, *, intra_op_threads: int = 0, providers: list[str] | None = None
    ) -> None:
        self.config = config
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        self.session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=providers or ["CPUExecutionProvider"]
        )
        self._check_signature()

    def _check_signature(self) -> None:
        session_inputs = {node.name for node in self.session.get_inputs()}
        session_outputs = {node.name for node in self.session.get_outputs()}
        for spec in self.config.inputs:
            if spec.name not in session_inputs:
                raise ModelSignatureError(f"model {self.config.name!r}: the ONNX graph has no input {spec.name!r}")
        for spec in self.config.outputs:
            if spec.name not in session_outputs:
                raise ModelSignatureError(f"model {self.config.name!r}: the ONNX graph has no output {spec.name!r}")

    def predict(self, request: InferRequest) -> dict[str, Any]:
        document = json.loads(request.body)
        feeds = {entry["name"]: self._to_array(entry) for entry in document["inputs"]}
        output_names = list(request.requested_outputs) or [spec.name for spec in self.config.outputs]
        results = self.session.run(output_names, feeds)
        response: dict[str, Any] = {"model_name": self.config.name, "model_version": self.config.version}
        if request.request_id is not None:
            response["id"] = request.request_id
        response["outputs"] = [self._to_output(name, array) for name, array in zip(output_names, results, strict=True)]
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
