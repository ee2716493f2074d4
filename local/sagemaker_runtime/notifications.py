"""SageMaker's ``InferenceResult`` notification, key for key, as an async endpoint publishes it to its success
or error topic (SageMaker developer guide, "Check prediction results")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from local.account import REGION


def inference_result(
    *,
    endpoint: str,
    inference_id: str,
    input_location: str,
    received: datetime,
    request: dict[str, str | None],
    status: str,
    response: dict[str, str],
    failure_reason: str | None = None,
) -> dict[str, Any]:
    """``request`` holds the optional ``contentType``, ``accept`` and ``customAttributes`` of the call (None:
    not sent, and left out as SageMaker leaves it out); ``status`` is ``Completed`` or ``Failed``."""
    parameters = {name: value for name, value in request.items() if value is not None}
    parameters["endpointName"] = endpoint
    parameters["inputLocation"] = input_location
    notification: dict[str, Any] = {
        "awsRegion": REGION,
        "eventTime": _timestamp(datetime.now(UTC)),
        "receivedTime": _timestamp(received),
        "invocationStatus": status,
    }
    if failure_reason is not None:
        notification["failureReason"] = failure_reason
    notification["requestParameters"] = parameters
    notification["responseParameters"] = response
    notification["inferenceId"] = inference_id
    notification.update({"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "InferenceResult"})
    return notification


def _timestamp(moment: datetime) -> str:
    """SageMaker's notification time format: ISO 8601, milliseconds, ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
