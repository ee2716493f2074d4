"""Domain outcomes and errors to HTTP: the one table of statuses and headers (README, 'API').

| outcome | status | headers |
| --- | --- | --- |
| Answered | 200 | |
| Degraded | 200 | X-Inference-Degraded: "<cause>; <answered-by>" |
| Answered / Degraded, binary outputs asked for | 200 | Inference-Header-Content-Length, application/octet-stream |
| SpilledToAsync | 202 | Location, X-Inference-Degraded: "<cause>; spilled-async" |
| Submitted | 202 | Location, Preference-Applied: respond-async (when the caller asked) |
| an InferenceError | STATUS_BY_ERROR | Retry-After on 503 and 409 |
| any other exception | 500 (``internal_error``) | |
"""

from __future__ import annotations

import json
from typing import Any, Final

from aws_lambda_powertools.event_handler.api_gateway import Response

from functions.domain.binary_tensors import HEADER_LENGTH, OutputEncoding, encode_response
from functions.domain.echo import clip_message
from functions.domain.errors import (
    CallerNotAllowedError,
    ConflictError,
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    IdempotencyKeyReusedError,
    InferenceError,
    InvalidRequestError,
    JobNotFoundError,
    ModelFailedError,
    ModelNotFoundError,
    PayloadTooLargeError,
    ResultExpiredError,
    RouteNotFoundError,
)
from functions.domain.outcomes import Answered, Degraded, InferOutcome, JobReceipt, SpilledToAsync
from functions.handlers.router.telemetry import degraded_header

JSON: Final[str] = "application/json"
BINARY: Final[str] = "application/octet-stream"
# The server metadata's name for the binary tensor data extension (Triton's, which its clients look for).
BINARY_TENSOR_EXTENSION: Final[str] = "binary_tensor_data"
# RFC 7240: a client asks for a 202 with "Prefer: respond-async"; we say we honoured it in the answer.
RESPOND_ASYNC: Final[str] = "respond-async"
DEGRADED_HEADER: Final[str] = "X-Inference-Degraded"
STATUS_BY_ERROR: dict[type[InferenceError], int] = {
    InvalidRequestError: 400,
    CallerNotAllowedError: 403,
    ModelNotFoundError: 404,
    RouteNotFoundError: 404,
    JobNotFoundError: 404,
    ConflictError: 409,
    ResultExpiredError: 410,
    IdempotencyKeyReusedError: 422,
    PayloadTooLargeError: 413,
    EndpointRejectedError: 502,
    EndpointUnavailableError: 503,
    EndpointTimeoutError: 504,
}


def status_for(error: InferenceError) -> int:
    if isinstance(error, ModelFailedError):
        # The model's own 4xx is the caller's problem (400 kept, other 4xx as 422); its 5xx is ours upstream.
        if 400 <= error.original_status < 500:
            return 400 if error.original_status == 400 else 422
        return 502
    # By the nearest class that has a status: a subclass (OutputContractError of EndpointRejectedError) keeps it.
    return next((STATUS_BY_ERROR[cls] for cls in type(error).__mro__ if cls in STATUS_BY_ERROR), 500)


def error_response(error: InferenceError) -> Response[str]:
    headers: dict[str, str] = {}
    if isinstance(error, EndpointUnavailableError | ConflictError):
        headers["Retry-After"] = str(error.retry_after_seconds)
    body = json.dumps({"error": clip_message(error.message)})
    return Response(status_code=status_for(error), content_type=JSON, body=body, headers=headers)


def internal_error() -> dict[str, Any]:
    """The proxy answer of an exception no handler caught (``app.last_resort``): a JSON 500, nothing echoed."""
    return {
        "statusCode": 500,
        "headers": {"Content-Type": JSON},
        "body": json.dumps({"error": "internal error: the router failed on this request and logged it"}),
        "isBase64Encoded": False,
    }


def outcome_response(outcome: InferOutcome, encoding: OutputEncoding | None = None) -> Response[Any]:
    """``encoding``: the outputs the request asked for binary (an async job's result stays JSON)."""
    if isinstance(outcome, Answered):
        return answer_response(outcome.body, encoding, {})
    if isinstance(outcome, Degraded):
        return answer_response(outcome.body, encoding, {DEGRADED_HEADER: degraded_header(outcome)})
    if isinstance(outcome, SpilledToAsync):
        return job_accepted(outcome.job, {DEGRADED_HEADER: degraded_header(outcome)})
    return job_accepted(outcome.job, {"Preference-Applied": RESPOND_ASYNC} if outcome.preference_applied else {})


def answer_response(body: bytes, encoding: OutputEncoding | None, headers: dict[str, str]) -> Response[Any]:
    binary = encode_response(body, encoding) if encoding is not None and encoding.any_binary else None
    if binary is None:
        return Response(status_code=200, content_type=JSON, body=body.decode("utf-8"), headers=headers)
    data, header_bytes = binary
    # A bytes body leaves the Lambda base64-encoded; API Gateway decodes it (infra/constructs/api.py).
    return Response(
        status_code=200, content_type=BINARY, body=data, headers={HEADER_LENGTH: str(header_bytes), **headers}
    )


def job_accepted(job: JobReceipt, headers: dict[str, str]) -> Response[str]:
    return json_response(job.document(), status_code=202, headers={"Location": f"/v2/jobs/{job.job_id}", **headers})


def json_response(document: object, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status_code, content_type=JSON, body=json.dumps(document, separators=(",", ":")), headers=headers
    )
