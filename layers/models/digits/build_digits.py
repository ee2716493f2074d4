"""Train the handwritten-digits classifier on scikit-learn's bundled data and write it as ONNX, reproducibly.

The default deploy's in-Lambda model: small enough (~3 KB) to ride in a layer and run inside the router.
The graph is multinomial logistic regression written out by hand (MatMul, Add, Softmax, ArgMax) so its
signature is exactly what ``functions/models.json`` declares: input ``pixels`` FP32 [-1, 64] (an 8x8 image,
row-major, each value 0..16); outputs ``label`` INT64 [-1] (the digit) and ``probabilities`` FP32 [-1, 10].

Reproducible bytes: the solver runs to a tolerance (1e-8) whose residual in the weights is ~1e-7, and the
weights are rounded to 4 decimals, a grid 1000x coarser, so another machine's BLAS writes the same file.

Usage: python layers/models/digits/build_digits.py [--output PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Final

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression

OPSET: Final[int] = 17
PIXELS: Final[int] = 64
CLASSES: Final[int] = 10
# Each feature counts the set pixels of a 4x4 block of the original 32x32 bitmap (the dataset's description).
PIXEL_MAX: Final[float] = 16.0
DECIMALS: Final[int] = 4
DEFAULT_OUTPUT: Final[Path] = Path(__file__).with_name("model.onnx")


def train() -> LogisticRegression:
    """Fit on pixels scaled to [0, 1], where lbfgs converges in a few hundred steps; the scale is folded
    back into the weights by :func:`to_onnx`, so the model takes the raw 0..16 values."""
    features, target = load_digits(return_X_y=True)
    classifier = LogisticRegression(max_iter=10_000, tol=1e-8)
    classifier.fit(features / PIXEL_MAX, target)
    return classifier


def to_onnx(classifier: LogisticRegression) -> onnx.ModelProto:
    coefficients = np.round(classifier.coef_.T / PIXEL_MAX, DECIMALS).astype(np.float32)
    intercepts = np.round(classifier.intercept_, DECIMALS).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["pixels", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "digits_logistic_regression",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", PIXELS])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", CLASSES]),
        ],
        initializer=[numpy_helper.from_array(coefficients, "weights"), numpy_helper.from_array(intercepts, "bias")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="build_digits")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def build() -> bytes:
    """The model file's bytes: what the committed ``model.onnx`` holds."""
    return to_onnx(train()).SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()
    args.output.write_bytes(build())
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
