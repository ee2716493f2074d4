"""``python -m bench.binary_tensors``: the router's own time for a 1,000-row iris request, JSON vs binary.

In-process through ``lambda_handler`` against the zero-latency endpoint of :mod:`bench.router_overhead`
(botocore answers with the model's real response bytes), so the figures are the router's work alone: the
handler total minus the time inside ``invoke_endpoint``. Three ways a client can ask: JSON in and out; the
binary tensor data extension in (``Inference-Header-Content-Length``, raw FP32 bytes) with a JSON answer;
binary in and out (tritonclient's default, ``binary_data=True``). The router forwards JSON to the model
either way, so a binary request costs its decode and re-encode.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from bench.router_overhead import REQUESTS, ROOT, ROW, iris_event, per_request, percentile, zero_latency_endpoint

ROWS = 1000


def binary_event(rows: int, *, binary_output: bool) -> dict[str, Any]:
    raw = struct.pack(f"<{4 * rows}f", *(ROW * rows))
    document: dict[str, Any] = {
        "inputs": [
            {"name": "input", "shape": [rows, 4], "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
        ]
    }
    if binary_output:
        document["parameters"] = {"binary_data_output": True}
    header = json.dumps(document).encode()
    event = iris_event(rows)
    event["headers"] = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    event["body"] = base64.b64encode(header + raw).decode()
    event["isBase64Encoded"] = True
    return event


def main() -> None:
    import functions.handlers.router.handler as router
    from functions.adapters.onnx_model import OnnxModel
    from functions.config.models import load_models_config
    from functions.domain.validation import validate_infer_request

    iris = load_models_config().model("iris")
    assert iris is not None
    model = OnnxModel(iris, ROOT / "layers/models/iris/model.onnx", intra_op_threads=1)
    json_event = iris_event(ROWS)
    answer = json.dumps(model.predict(validate_infer_request(iris, json_event["body"].encode())), separators=(",", ":"))
    clients = list(router.sagemaker._clients.values())
    timer = {"inside": 0.0, "start": 0.0}
    for client in clients:
        zero_latency_endpoint(client, answer.encode(), timer)
    cases = (
        ("JSON in, JSON out", json_event),
        ("binary in, JSON out", binary_event(ROWS, binary_output=False)),
        ("binary in and out", binary_event(ROWS, binary_output=True)),
    )
    print(f"router's own time, {ROWS}-row iris request, {REQUESTS} requests after 50 warm-up (ms)")
    print(f"    {'request':<22} {'body bytes':>11} {'own p50':>9} {'own p99':>9} {'total p50':>10}")
    for name, event in cases:
        body_bytes = len(base64.b64decode(event["body"])) if event["isBase64Encoded"] else len(event["body"])
        totals, own = per_request(router.lambda_handler, event, timer)
        print(
            f"    {name:<22} {body_bytes:>11} {percentile(own, 0.5):9.3f} {percentile(own, 0.99):9.3f} "
            f"{percentile(totals, 0.5):10.3f}"
        )
    print("    own = handler total minus the time inside invoke_endpoint (botocore + zero-latency endpoint)")


if __name__ == "__main__":
    main()
