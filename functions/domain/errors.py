"""Domain errors. Each says what went wrong in words a caller can act on; the handler maps them to HTTP
statuses in one table (``functions/handlers/router/responses.py``)."""

from __future__ import annotations

from functions.domain.failures import FailureReason


class InferenceError(Exception):
    """Base of every error the router answers with a status other than 200."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequestError(InferenceError):
    """The request breaks a rule of the API or of the model's declared inputs (HTTP 400)."""


class ModelNotFoundError(InferenceError):
    """No model of that name is configured (HTTP 404)."""


class JobNotFoundError(InferenceError):
    """No async job with that id (HTTP 404)."""


class RouteNotFoundError(InferenceError):
    """No API resource at that path and method (HTTP 404)."""


class ResultExpiredError(InferenceError):
    """The job succeeded but its result object has expired from the async bucket (HTTP 410 Gone)."""


class PayloadTooLargeError(InferenceError):
    """The body is over the route's limit and the model has no async route (HTTP 413)."""


class ModelFailedError(InferenceError):
    """The model itself raised an error; ``original_status`` is the status its container answered."""

    def __init__(self, message: str, original_status: int) -> None:
        super().__init__(message)
        self.original_status = original_status


class EndpointUnavailableError(InferenceError):
    """The endpoint, or a store the async path needs (S3, DynamoDB), is throttled, warming up or failing
    transiently; a retry later may succeed (HTTP 503 + ``Retry-After: retry_after_seconds``).

    Both values are fixed at construction: a caller that learns a better ``Retry-After`` (the retry loop,
    from its backoff or the breaker's cooldown) raises :meth:`retry_after` 's new error instead.
    """

    def __init__(self, message: str, reason: FailureReason, retry_after_seconds: int = 1) -> None:
        super().__init__(message)
        self._reason = reason
        self._retry_after_seconds = retry_after_seconds

    @property
    def reason(self) -> FailureReason:
        return self._reason

    @property
    def retry_after_seconds(self) -> int:
        return self._retry_after_seconds

    def retry_after(self, seconds: int) -> EndpointUnavailableError:
        """The same refusal, telling the caller to wait ``seconds``."""
        return EndpointUnavailableError(self.message, self.reason, seconds)


class EndpointRejectedError(InferenceError):
    """The endpoint refused a request the router had accepted: missing endpoint, broken contract (HTTP 502)."""


class EndpointTimeoutError(InferenceError):
    """The endpoint did not answer within the deadline (HTTP 504)."""


class ConflictError(InferenceError):
    """The same Idempotency-Key is being submitted right now (HTTP 409 + ``Retry-After``)."""

    retry_after_seconds = 1  # a submit takes about a second: S3 put, job record, invoke_endpoint_async


class IdempotencyKeyReusedError(InferenceError):
    """An Idempotency-Key came back with a different body (HTTP 422)."""


class CallerNotAllowedError(InferenceError):
    """The stage's caller policy does not let this caller call the model, or not in this mode (HTTP 403)."""
