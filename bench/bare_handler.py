"""The baseline: a handler that only imports boto3, creates the sagemaker-runtime client and forwards the body."""

from __future__ import annotations

import base64
from typing import Any

import boto3

client = boto3.client("sagemaker-runtime")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    body = event["body"] or ""
    payload = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    response = client.invoke_endpoint(EndpointName="iris", Body=payload, ContentType="application/json")
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": response["Body"].read().decode(),
    }
