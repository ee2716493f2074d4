"""Write a seeded multilayer perceptron as ONNX, with its serving signature, for the batching benchmark.

The graph is four 512-wide hidden layers (Gemm + Relu) and a linear head with a softmax, written out by
hand so its signature is exactly :func:`signature`: input ``features`` FP32 [-1, 64]; outputs ``label``
INT64 [-1] and ``probabilities`` FP32 [-1, 10]. The batch dim is free, so the server can stack requests.
The weights are random (seeded): the model exists to cost what a real MLP of this size costs, not to be
right. At ~3.3 MB it is built on demand (into a cache dir) rather than committed.

Usage: python layers/models/mlp/build_mlp.py [--output-dir DIR]   (writes model.onnx + signature.json;
       DIR defaults to layers/models/build/mlp, which git ignores)
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path
from typing import Any, Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEED: Final[int] = 0
OPSET: Final[int] = 17
NAME: Final[str] = "mlp"
INPUT_WIDTH: Final[int] = 64
HIDDEN_WIDTH: Final[int] = 512
HIDDEN_LAYERS: Final[int] = 4
CLASSES: Final[int] = 10
# Git-ignored (layers/*/build/): the ~3.3 MB model is rebuilt on demand, never committed.
DEFAULT_OUTPUT_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "build" / NAME


def signature() -> dict[str, Any]:
    """The model's ``signature.json``, as the server reads it (functions.config.models.SIGNATURE_FIELDS)."""
    return {
        "name": NAME,
        "version": "1",
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, INPUT_WIDTH]}],
        "outputs": [
            {"name": "label", "datatype": "INT64", "shape": [-1]},
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, CLASSES]},
        ],
    }


def build(seed: int = SEED, hidden_width: int = HIDDEN_WIDTH) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    widths = [INPUT_WIDTH, *([hidden_width] * HIDDEN_LAYERS), CLASSES]
    initializers: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []
    current = "features"
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        # He initialisation keeps activations in a sane range through the ReLU stack.
        weight = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(fan_in, fan_out)).astype(np.float32)
        bias = rng.normal(0.0, 0.01, size=fan_out).astype(np.float32)
        initializers += [numpy_helper.from_array(weight, f"w{layer}"), numpy_helper.from_array(bias, f"b{layer}")]
        is_head = layer == len(widths) - 2
        dense = "logits" if is_head else f"dense{layer}"
        nodes.append(helper.make_node("Gemm", [current, f"w{layer}", f"b{layer}"], [dense]))
        if not is_head:
            current = f"hidden{layer}"
            nodes.append(helper.make_node("Relu", [dense], [current]))
    nodes += [
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        f"mlp_{hidden_width}x{HIDDEN_LAYERS}",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", INPUT_WIDTH])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="build_mlp")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def write(output_dir: Path, seed: int = SEED, hidden_width: int = HIDDEN_WIDTH) -> Path:
    """Write ``model.onnx`` and ``signature.json`` into ``output_dir`` (the SageMaker model dir layout)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / "model.onnx"
    model_path.write_bytes(build(seed, hidden_width).SerializeToString())
    (output_dir / "signature.json").write_text(json.dumps(signature(), indent=2) + "\n", encoding="utf-8")
    return model_path


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--hidden-width", type=int, default=HIDDEN_WIDTH)
    args = parser.parse_args()
    model_path = write(args.output_dir, args.seed, args.hidden_width)
    print(f"wrote {model_path} ({model_path.stat().st_size / 1e6:.1f} MB) and its signature.json")


if __name__ == "__main__":
    main()
