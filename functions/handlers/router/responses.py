"""Domain errors to HTTP: the one table of statuses (design.md, 'Status codes')."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler.api_gateway import Response

from functions.domain.errors import (
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

JSON = "application/json"
STATUS_BY_ERROR: dict[type[InferenceError], int] = {
    InvalidRequestError: 400,
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
    return STATUS_BY_ERROR.get(type(error), 500)


def error_response(error: InferenceError) -> Response[str]:
    headers: dict[str, str] = {}
    if isinstance(error, EndpointUnavailableError | ConflictError):
        headers["Retry-After"] = str(getattr(error, "retry_after_seconds", 1))
    return Response(
        status_code=status_for(error), content_type=JSON, body=json.dumps({"error": error.message}), headers=headers
    )


def json_response(document: object, status_code: int = 200, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status_code, content_type=JSON, body=json.dumps(document, separators=(",", ":")), headers=headers
    )
