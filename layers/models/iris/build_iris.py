"""Train the iris classifier on scikit-learn's bundled data and write it as ONNX, reproducibly.

The graph is multinomial logistic regression written out by hand (MatMul, Add, Softmax, ArgMax) so its
signature is exactly what ``functions/models.json`` declares: input ``input`` FP32 [-1, 4]; outputs
``label`` INT64 [-1] and ``probabilities`` FP32 [-1, 3].

Usage: python layers/models/iris/build_iris.py [--output PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

SEED = 0
OPSET = 17


def train() -> LogisticRegression:
    features, target = load_iris(return_X_y=True)
    classifier = LogisticRegression(max_iter=1000, random_state=SEED)
    classifier.fit(features, target)
    return classifier


def to_onnx(classifier: LogisticRegression) -> onnx.ModelProto:
    weights = numpy_helper.from_array(classifier.coef_.T.astype(np.float32), "weights")
    bias = numpy_helper.from_array(classifier.intercept_.astype(np.float32), "bias")
    nodes = [
        helper.make_node("MatMul", ["input", "weights"], ["scores"]),
        helper.make_node("Add", ["scores", "bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "iris_logistic_regression",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3]),
        ],
        initializer=[weights, bias],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="build_iris")
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("model.onnx"))
    args = parser.parse_args()
    classifier = train()
    args.output.write_bytes(to_onnx(classifier).SerializeToString())
    features, target = load_iris(return_X_y=True)
    print(f"wrote {args.output} (training accuracy {classifier.score(features, target):.3f})")


if __name__ == "__main__":
    main()
