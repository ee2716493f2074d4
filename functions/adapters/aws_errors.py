"""Transient AWS failures of the async path's stores (S3, DynamoDB) as the domain's "unavailable" error.

Without this a throttled table or a dropped connection escapes the router as an unhandled exception: API
Gateway answers 502 and the router-errors alarm pages, for something a retry in a second would fix. A
transient failure becomes :class:`EndpointUnavailableError` (503 + ``Retry-After``). Anything else (access
denied, a missing table) is a deployment fault and still raises: the router-errors page is right for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from functions.domain.errors import EndpointUnavailableError
from functions.domain.failures import FailureReason

# Error codes S3 and DynamoDB answer when a retry later may succeed (their docs' "retryable" errors).
TRANSIENT_CODES: Final[frozenset[str]] = frozenset(
    {
        # DynamoDB
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "ThrottlingException",
        "InternalServerError",
        "ServiceUnavailable",
        "TransactionConflictException",
        # S3 (a HEAD answers no body: its code is the bare status, caught by the status check below)
        "SlowDown",
        "InternalError",
        "RequestTimeout",
    }
)
RETRY_AFTER_S: Final[int] = 1


def is_transient(error: Exception) -> bool:
    """A throttle, a server-side failure or a connection that failed or timed out: worth a retry later."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return code in TRANSIENT_CODES or status in (500, 502, 503, 504)
    # Refused, reset or timed out (connect or read): botocore's ConnectionError and HTTPClientError families.
    return isinstance(error, BotoConnectionError | HTTPClientError)


def error_code(error: Exception) -> str:
    """The AWS error code of a ClientError, else the botocore exception's name (e.g. EndpointConnectionError)."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code") or "ClientError")
    return type(error).__name__


@contextmanager
def unavailable_when_transient(store: str, reason: FailureReason) -> Iterator[None]:
    """Re-raise a transient failure of ``store`` (e.g. "the job table") as 503 + Retry-After; others as they are.

    Example:
        >>> with unavailable_when_transient("the job table", FailureReason.JOB_TABLE_UNAVAILABLE):
        ...     dynamodb.get_item(TableName=table, Key=key)
    """
    try:
        yield
    except (ClientError, BotoConnectionError, HTTPClientError) as error:
        if not is_transient(error):
            raise
        message = f"{store} is unavailable ({error_code(error)}); retry later"
        raise EndpointUnavailableError(message, reason=reason, retry_after_seconds=RETRY_AFTER_S) from error
