"""Writes the sample API Gateway REST proxy events in ``events/router/`` (``python -m local.sample_events``).

They are what the local API sends the router, so tests and users exercise the same shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from local.api_gateway import build_rest_event

EVENTS_DIR: Final[Path] = Path(__file__).resolve().parent.parent / "events" / "router"
IRIS_ROW: Final[list[float]] = [5.1, 3.5, 1.4, 0.2]
JSON_HEADERS: Final[dict[str, str]] = {
    "Content-Type": "application/json",
    "Host": "abc123.execute-api.us-east-1.amazonaws.com",
}


def infer_body(**overrides: Any) -> bytes:
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROW, **overrides}
    return json.dumps({"id": "sample-1", "inputs": [tensor]}).encode()


# name -> (method, path, body); every route, valid and invalid.
SAMPLES: Final[dict[str, tuple[str, str, bytes]]] = {
    "apigw_server_metadata": ("GET", "/v2", b""),
    "apigw_health_live": ("GET", "/v2/health/live", b""),
    "apigw_health_ready": ("GET", "/v2/health/ready", b""),
    "apigw_model_metadata": ("GET", "/v2/models/iris", b""),
    "apigw_model_metadata_unknown": ("GET", "/v2/models/nope", b""),
    "apigw_model_ready": ("GET", "/v2/models/iris/ready", b""),
    "apigw_unknown_path": ("GET", "/v2/unknown", b""),
    "apigw_infer_valid": ("POST", "/v2/models/iris/infer", infer_body()),
    "apigw_infer_nested": ("POST", "/v2/models/iris/infer", infer_body(data=[IRIS_ROW])),
    "apigw_infer_unknown_model": ("POST", "/v2/models/nope/infer", infer_body()),
    "apigw_infer_malformed_json": ("POST", "/v2/models/iris/infer", b'{"inputs": ['),
    "apigw_infer_wrong_datatype": ("POST", "/v2/models/iris/infer", infer_body(datatype="INT8", data=[5, 3, 1, 0])),
    "apigw_infer_wrong_shape": ("POST", "/v2/models/iris/infer", infer_body(shape=[2, 4])),
    "apigw_infer_out_of_range": ("POST", "/v2/models/iris/infer", infer_body(data=[5.1, 3.5, 1.4, 99.0])),
    "apigw_infer_unknown_input": ("POST", "/v2/models/iris/infer", infer_body(name="features")),
}


def sample_event(name: str) -> dict[str, Any]:
    method, path, body = SAMPLES[name]
    event = build_rest_event(method, path, JSON_HEADERS if body else {"Host": JSON_HEADERS["Host"]}, body)
    assert event is not None
    return event


def main() -> None:
    EVENTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        (EVENTS_DIR / f"{name}.json").write_text(json.dumps(sample_event(name), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(SAMPLES)} events to {EVENTS_DIR}")


if __name__ == "__main__":
    main()
