"""SageMaker's error answers on the sagemaker-runtime protocol: a status, header ``x-amzn-ErrorType: <Code>``
and body ``{"message": ...}`` (plus the ModelError fields), from which boto3 raises the modelled exception."""

from __future__ import annotations

import json
from typing import Any, Final

from local.account import ACCOUNT_ID, REGION
from serving.service import Answer

# The status SageMaker answers each error code with (sagemaker-runtime API reference, Errors).
ERROR_STATUS: Final[dict[str, int]] = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
}
# Not an AWS error code: the runtime closes the connection without answering (a network failure).
DROP_CONNECTION: Final[str] = "DropConnection"

# An answer and the headers that go with it; None where the connection is dropped instead.
Reply = tuple[Answer, dict[str, str]]


def error_answer(code: str, message: str | None, **fields: Any) -> Reply:
    body = json.dumps({"message": message, **fields}).encode()
    return Answer(ERROR_STATUS[code], body), {
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"
    }


def endpoint_not_found(endpoint: str) -> Reply:
    return error_answer("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")


def model_error(endpoint: str, status: int, message: str) -> Reply:
    """A container's error answer as SageMaker relays it: 424 with the container's status and message."""
    kind = "client" if status < 500 else "server"
    log_stream = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
    return error_answer(
        "ModelError",
        f'Received {kind} error ({status}) from primary with message "{message}". '
        f"See {log_stream} for more information.",
        OriginalStatusCode=status,
        OriginalMessage=message,
        LogStreamArn=log_stream,
    )


def injected_error(endpoint: str, code: str, model_status: int) -> Reply | None:
    """The answer to an injected fault ``code``; None for :data:`DROP_CONNECTION`."""
    if code == DROP_CONNECTION:
        return None
    if code == "ModelError":
        return model_error(endpoint, model_status, json.dumps({"error": "injected model failure"}))
    if code == "ThrottlingException":
        return error_answer("ThrottlingException", None)  # SageMaker sends a null message here
    messages = {
        "ModelNotReadyException": f"Model for endpoint {endpoint} is not ready yet. Please retry after some time.",
        "ValidationError": f"Endpoint {endpoint} rejected the request.",
    }
    return error_answer(code, messages.get(code, f"{code} (injected)"))
