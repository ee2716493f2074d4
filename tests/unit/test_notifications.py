"""SageMaker's async InferenceResult notification as the result handler reads it: the raw message (the
templates' and local mode's raw delivery) and the SNS envelope (a subscription without raw delivery)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.domain.job_records import NotificationError, parse_notification
from local.sample_events import SAMPLE_JOB_ID, inference_result


def envelope(message: dict[str, Any]) -> str:
    return json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Message": json.dumps(message)})


@pytest.mark.parametrize("shape", ["raw", "sns-envelope"])
def test_parse_notification_success_in_either_shape_gives_the_output_location(shape: str) -> None:
    document = inference_result(succeeded=True)
    body = json.dumps(document) if shape == "raw" else envelope(document)
    outcome = parse_notification(body)
    assert (outcome.job_id, outcome.succeeded) == (SAMPLE_JOB_ID, True)
    assert outcome.output_location == document["responseParameters"]["outputLocation"]


@pytest.mark.parametrize("shape", ["raw", "sns-envelope"])
def test_parse_notification_failure_in_either_shape_gives_location_and_reason(shape: str) -> None:
    document = inference_result(succeeded=False)
    body = json.dumps(document) if shape == "raw" else envelope(document)
    outcome = parse_notification(body)
    assert not outcome.succeeded
    assert outcome.failure_location == document["responseParameters"]["failureLocation"]
    assert outcome.reason == document["failureReason"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", "not JSON or not an SNS notification"),
        ('{"Type": "Notification"}', "not JSON or not an SNS notification"),
        ('{"eventName": "Other"}', "not a SageMaker InferenceResult notification"),
        ('{"eventName": "InferenceResult", "invocationStatus": "Running"}', "lacks inferenceId"),
    ],
)
def test_parse_notification_of_something_else_is_a_notification_error(body: str, message: str) -> None:
    with pytest.raises(NotificationError, match=message):
        parse_notification(body)
