"""Small ONNX graphs whose runs fail on purpose, for the error paths of the model server and the in-Lambda tier."""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# Their model config entries (inputs and outputs as the config declares them).
LOOKUP_TENSORS: dict[str, Any] = {
    "inputs": [{"name": "index", "datatype": "INT64", "shape": [-1]}],
    "outputs": [{"name": "row", "datatype": "FP32", "shape": [-1, 2]}],
}
BROKEN_TENSORS: dict[str, Any] = {
    "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}],
    "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
}


def _serialized(graph: Any) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    data: bytes = model.SerializeToString()
    return data


def lookup_model() -> bytes:
    """A Gather over a 10-row table (row i is [2i, 2i+1]): an index outside 0..9 makes onnxruntime refuse the
    run with INVALID_ARGUMENT, the request's values being at fault."""
    table = numpy_helper.from_array(np.arange(20, dtype=np.float32).reshape(10, 2), "table")
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "index"], ["row"], axis=0)],
        "lookup",
        [helper.make_tensor_value_info("index", TensorProto.INT64, ["batch"])],
        [helper.make_tensor_value_info("row", TensorProto.FLOAT, ["batch", 2])],
        initializer=[table],
    )
    return _serialized(graph)


def broken_model() -> bytes:
    """A Reshape to a fixed [3] that no [batch, 4] input fits: every run fails with FAIL, the model's own fault."""
    shape = numpy_helper.from_array(np.array([3], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "broken",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        initializer=[shape],
    )
    return _serialized(graph)
