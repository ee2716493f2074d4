"""Writes the sample API Gateway REST proxy events in ``events/router/`` (``python -m local.sample_events``).

They are what the local API sends the router, so tests and users exercise the same shape.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Final

from local.account import ACCOUNT_ID, REGION
from local.api_gateway import build_rest_event

EVENTS_ROOT: Final[Path] = Path(__file__).resolve().parent.parent / "events"
EVENTS_DIR: Final[Path] = EVENTS_ROOT / "router"
IRIS_ROW: Final[list[float]] = [5.1, 3.5, 1.4, 0.2]
JSON_HEADERS: Final[dict[str, str]] = {
    "Content-Type": "application/json",
    "Host": f"abc123.execute-api.{REGION}.amazonaws.com",
}


# scikit-learn's digits dataset, its first image (a 0): 8x8 pixels row-major, each 0..16.
DIGITS_ZERO: Final[list[float]] = [
    0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0, 0, 4, 12, 0, 0, 8, 8, 0,
    0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0, 0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0,
]  # fmt: skip
# A pixel past the dataset's 0..16 encoding, at element 9.
DIGITS_OUT_OF_RANGE: Final[list[float]] = [*DIGITS_ZERO[:9], 17, *DIGITS_ZERO[10:]]


def infer_body(**overrides: Any) -> bytes:
    tensor = {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": IRIS_ROW, **overrides}
    return json.dumps({"id": "sample-1", "inputs": [tensor]}).encode()


def digits_body(pixels: list[float]) -> bytes:
    tensor = {"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": pixels}
    return json.dumps({"id": "sample-digits-1", "inputs": [tensor]}).encode()


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
    "apigw_infer_respond_async": ("POST", "/v2/models/iris/infer", infer_body()),
    "apigw_job_status": ("GET", "/v2/jobs/3f2b7c1e9a0d4e5f8a6b7c8d9e0f1a2b", b""),
    # digits runs inside the router (route.sync "lambda").
    "apigw_digits_model_metadata": ("GET", "/v2/models/digits", b""),
    "apigw_digits_model_ready": ("GET", "/v2/models/digits/ready", b""),
    "apigw_digits_infer_valid": ("POST", "/v2/models/digits/infer", digits_body(DIGITS_ZERO)),
    "apigw_digits_infer_out_of_range": ("POST", "/v2/models/digits/infer", digits_body(DIGITS_OUT_OF_RANGE)),
}
# Headers beyond the defaults, per sample.
EXTRA_HEADERS: Final[dict[str, dict[str, str]]] = {
    "apigw_infer_respond_async": {"Prefer": "respond-async", "Idempotency-Key": "order-4711"},
}
SAMPLE_JOB_ID: Final[str] = "3f2b7c1e9a0d4e5f8a6b7c8d9e0f1a2b"
SAMPLE_QUEUE_ARN: Final[str] = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:InferenceRouter-dev-AsyncStorageResultQueue"


def inference_result(*, succeeded: bool) -> dict[str, Any]:
    """SageMaker's async InferenceResult notification, as the endpoint publishes it to SNS."""
    bucket = "s3://inferencerouter-dev-asyncstoragebucket"
    document: dict[str, Any] = {
        "awsRegion": REGION,
        "eventTime": "2026-11-22T10:15:04.513Z",
        "receivedTime": "2026-11-22T10:15:02.061Z",
        "invocationStatus": "Completed" if succeeded else "Failed",
        "requestParameters": {
            "accept": "application/json",
            "contentType": "application/json",
            "endpointName": "dev-iris-async",
            "inputLocation": f"{bucket}/input/dev-iris-async/{SAMPLE_JOB_ID}.json",
        },
        "responseParameters": {"contentType": "application/json"},
        "inferenceId": SAMPLE_JOB_ID,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if succeeded:
        document["responseParameters"]["outputLocation"] = f"{bucket}/output/dev-iris-async/7d1c0e52.out"
    else:
        document["failureReason"] = "ClientError: Received server error (500) from model: input out of range"
        document["responseParameters"]["failureLocation"] = f"{bucket}/failure/dev-iris-async/7d1c0e52-error.out"
    return document


def sqs_event(bodies: list[str]) -> dict[str, Any]:
    """An SQS batch as Lambda's event source mapping delivers it to the result function."""
    records = []
    for index, body in enumerate(bodies):
        records.append(
            {
                "messageId": f"059f36b4-87a3-44ab-83d2-661975830a7{index}",
                "receiptHandle": f"AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{index}",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795385704513",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795385704520",
                },
                "messageAttributes": {},
                "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": SAMPLE_QUEUE_ARN,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


# Events of the async pipeline's functions: results (SQS) and sweeper (EventBridge schedule).
PIPELINE_SAMPLES: Final[dict[str, dict[str, Any]]] = {
    "results/sqs_inference_succeeded": sqs_event([json.dumps(inference_result(succeeded=True))]),
    "results/sqs_inference_failed": sqs_event([json.dumps(inference_result(succeeded=False))]),
    "results/sqs_not_a_notification": sqs_event(['{"hello": "world"}']),
    "sweeper/scheduled": {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": "2026-11-22T10:20:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/InferenceRouter-dev-AsyncPipelineSweepSchedule"],
        "detail": {},
    },
}


def sample_event(name: str) -> dict[str, Any]:
    method, path, body = SAMPLES[name]
    headers = JSON_HEADERS if body else {"Host": JSON_HEADERS["Host"]}
    event = build_rest_event(method, path, {**headers, **EXTRA_HEADERS.get(name, {})}, body)
    assert event is not None
    return event


def main() -> None:
    EVENTS_DIR.mkdir(parents=True, exist_ok=True)
    for name in SAMPLES:
        (EVENTS_DIR / f"{name}.json").write_text(json.dumps(sample_event(name), indent=2) + "\n", encoding="utf-8")
    for name, event in PIPELINE_SAMPLES.items():
        target = EVENTS_ROOT / f"{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(event, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(SAMPLES) + len(PIPELINE_SAMPLES)} events under {EVENTS_ROOT}")


if __name__ == "__main__":
    main()
