"""SageMaker runtime adapter: invokes endpoints and turns SageMaker's errors into domain errors.

botocore fixes a client's timeouts at creation, so the adapter keeps one client per timeout step
(rounded *down*, never past the deadline) and creates each once. In Lambda the remaining time at the
start of a request is nearly constant, so one or two clients serve a whole environment.
botocore's own retries are off (``total_max_attempts=1``): its legacy mode would retry 429s and read
timeouts with 60 s reads, far past API Gateway's 29 s (docs/architecture.md, 'Deadlines'). Retrying is
the router's decision.
"""

from __future__ import annotations

import bisect
import functools
import re
import threading
from typing import TYPE_CHECKING, Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError, IncompleteReadError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.session import Session, get_session

from functions.domain.errors import (
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    ModelFailedError,
    PayloadTooLargeError,
)
from functions.domain.failures import FailureReason

if TYPE_CHECKING:
    from collections.abc import Callable

# Timeout steps in milliseconds: fine below a second, where rounding down would waste most of the budget.
TIMEOUT_STEPS_MS: Final[tuple[int, ...]] = (
    50,
    100,
    200,
    300,
    500,
    750,
    1000,
    1500,
    2000,
    3000,
    4000,
    5000,
    6000,
    8000,
    10_000,
    12_000,
    15_000,
    20_000,
    25_000,
    30_000,
    45_000,
    60_000,
)
CONNECT_TIMEOUT_MS: Final[int] = 1000
# SageMaker error codes that mean "try again later" and the reason the router reports for each (all of them
# retryable: functions.domain.failures.RETRYABLE_REASONS).
TRANSIENT_ERRORS: Final[dict[str, FailureReason]] = {
    "ModelNotReadyException": FailureReason.MODEL_NOT_READY,
    "ThrottlingException": FailureReason.THROTTLED,
    "InternalFailure": FailureReason.INTERNAL_FAILURE,
    "ServiceUnavailable": FailureReason.SERVICE_UNAVAILABLE,
    "InternalDependencyException": FailureReason.INTERNAL_DEPENDENCY,
    # An answer without x-amzn-ErrorType (a proxy or load balancer on the way) gets its HTTP status as code.
    "429": FailureReason.THROTTLED,
    "500": FailureReason.INTERNAL_FAILURE,
    "502": FailureReason.BAD_GATEWAY,
    "503": FailureReason.SERVICE_UNAVAILABLE,
    "504": FailureReason.GATEWAY_TIMEOUT,
}


# CustomAttributes reach the model container as the X-Amzn-SageMaker-Custom-Attributes header: at most 1,024
# visible US-ASCII characters (the InvokeEndpoint API reference). The correlation id travels there.
CUSTOM_ATTRIBUTES_MAX_CHARS: Final[int] = 1024
CUSTOM_ATTRIBUTES_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[\x20-\x7e]+$")
CORRELATION_ID_ATTRIBUTE: Final[str] = "correlation_id"


# SageMaker's ValidationError for a missing endpoint: "Endpoint <name> of account <id> not found."
ENDPOINT_NOT_FOUND_MESSAGE: Final[re.Pattern[str]] = re.compile(r"^Endpoint \S+ of account \S+ not found")
# A serverless endpoint takes a few minutes to create; asking again sooner than this only adds load.
ENDPOINT_NOT_FOUND_RETRY_AFTER_S: Final[int] = 30


def timeout_step_ms(timeout_ms: int) -> int:
    """The largest step not above ``timeout_ms`` (the smallest step if it is below all of them)."""
    position = bisect.bisect_right(TIMEOUT_STEPS_MS, timeout_ms)
    return TIMEOUT_STEPS_MS[max(position - 1, 0)]


def custom_attributes(correlation_id: str | None) -> dict[str, str]:
    """The call's ``CustomAttributes`` argument: ``correlation_id=<id>``, or none when there is no id or it is
    not one SageMaker accepts there (an API Gateway request id always is; a direct invoke's may be anything)."""
    if not correlation_id:
        return {}
    value = f"{CORRELATION_ID_ATTRIBUTE}={correlation_id}"
    if len(value) > CUSTOM_ATTRIBUTES_MAX_CHARS or not CUSTOM_ATTRIBUTES_PATTERN.fullmatch(value):
        return {}
    return {"CustomAttributes": value}


def split_timeout_ms(timeout_ms: int) -> tuple[int, int]:
    """(connect, read) for an attempt of ``timeout_ms``: together never more than the attempt may take.

    A new connection spends its connect time before the read timeout starts, so the two share the budget;
    connecting gets a quarter of it at most (reused keep-alive connections spend none).
    """
    connect_ms = min(CONNECT_TIMEOUT_MS, max(timeout_ms // 4, 1))
    return connect_ms, timeout_ms - connect_ms


@functools.cache
def runtime_session() -> Session:
    """The botocore session behind every runtime client (credentials and service model loaded once). Not
    boto3's: ``import boto3`` also loads s3transfer (about 40 ms of the bench's ~200 ms cold start), and a
    runtime client needs none of boto3's resource or transfer layer."""
    return get_session()


def create_sagemaker_runtime_client(timeout_ms: int) -> Any:
    connect_ms, read_ms = split_timeout_ms(timeout_ms)
    config = Config(
        connect_timeout=connect_ms / 1000,
        read_timeout=read_ms / 1000,
        retries={"mode": "standard", "total_max_attempts": 1},
        tcp_keepalive=True,
    )
    return runtime_session().create_client("sagemaker-runtime", config=config)


class SageMakerBackend:
    """Calls ``invoke_endpoint``; raises only domain errors.

    Example:
        >>> backend = SageMakerBackend()
        >>> backend.invoke("iris", b'{"inputs": [...]}', attempt_ms=lambda: 2000)
        b'{"model_name": "iris", ...}'
    """

    def __init__(self, client_factory: Callable[[int], Any] = create_sagemaker_runtime_client) -> None:
        self._client_factory = client_factory
        self._clients: dict[int, Any] = {}
        self._lock = threading.Lock()

    def client(self, timeout_ms: int) -> Any:
        step = timeout_step_ms(timeout_ms)
        client = self._clients.get(step)
        if client is None:
            with self._lock:
                client = self._clients.get(step) or self._client_factory(step)
                self._clients[step] = client
        return client

    def warm(self, timeout_ms: int) -> None:
        """Create the client for a timeout ahead of the first request (called at cold start)."""
        self.client(timeout_ms)

    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes:
        """Call within ``attempt_ms()``, read again once the client exists: the first client of a timeout step
        costs a few ms to build (on a busy host, hundreds), time the attempt would otherwise spend twice and
        so outlive the deadline. ``correlation_id`` reaches the container as a custom attribute."""
        timeout_ms = attempt_ms()
        client = self.client(timeout_ms)
        while (left_ms := attempt_ms()) < timeout_ms and timeout_step_ms(left_ms) < timeout_step_ms(timeout_ms):
            timeout_ms = left_ms
            client = self.client(timeout_ms)
        step_ms = timeout_step_ms(timeout_ms)
        try:
            response = client.invoke_endpoint(
                EndpointName=endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/json",
                **custom_attributes(correlation_id),
            )
            payload: bytes = response["Body"].read()
        except ClientError as error:
            raise map_client_error(endpoint, error) from error
        except ReadTimeoutError as error:
            raise EndpointTimeoutError(f"endpoint {endpoint!r} did not answer within {step_ms} ms") from error
        except (BotoConnectionError, HTTPClientError, IncompleteReadError) as error:  # refused, reset, cut short
            raise EndpointUnavailableError(
                f"endpoint {endpoint!r} could not be reached: {type(error).__name__}",
                reason=FailureReason.CONNECTION_ERROR,
            ) from error
        return payload

    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int,
                     correlation_id: str | None = None) -> tuple[str, str | None]:  # fmt: skip
        """Queue an inference on an async endpoint; returns its output and failure S3 locations. The job id is
        the ``InferenceId`` (the notification names it); ``correlation_id`` goes in the custom attributes."""
        client = self.client(timeout_ms)
        try:
            response = client.invoke_endpoint_async(
                EndpointName=endpoint, InputLocation=input_location, InferenceId=job_id,
                ContentType="application/json", Accept="application/json",
                InvocationTimeoutSeconds=invocation_timeout_s, RequestTTLSeconds=request_ttl_s,
                **custom_attributes(correlation_id),
            )  # fmt: skip
        except ClientError as error:
            raise map_client_error(endpoint, error) from error
        except ReadTimeoutError as error:
            raise EndpointUnavailableError(
                f"async endpoint {endpoint!r} did not acknowledge the job in time", reason=FailureReason.SUBMIT_TIMEOUT
            ) from error
        except (BotoConnectionError, HTTPClientError) as error:
            raise EndpointUnavailableError(
                f"async endpoint {endpoint!r} could not be reached: {type(error).__name__}",
                reason=FailureReason.CONNECTION_ERROR,
            ) from error
        return str(response["OutputLocation"]), response.get("FailureLocation")


def map_client_error(endpoint: str, error: ClientError) -> Exception:
    """Turn a SageMaker runtime error into the domain error that carries its meaning (docs/architecture.md,
    'SageMaker runtime errors')."""
    details = error.response.get("Error", {})
    code = details.get("Code", "Unknown")
    message = details.get("Message") or ""
    if code == "ModelError":
        original_status = int(error.response.get("OriginalStatusCode") or 500)
        original_message = error.response.get("OriginalMessage") or message
        return ModelFailedError(
            f"model behind {endpoint!r} failed ({original_status}): {original_message}", original_status
        )
    reason = TRANSIENT_ERRORS.get(code)
    if reason is not None:
        return EndpointUnavailableError(f"endpoint {endpoint!r} is unavailable ({code}); retry later", reason=reason)
    if code == "ValidationError" and ENDPOINT_NOT_FOUND_MESSAGE.search(message):
        return EndpointUnavailableError(
            f"endpoint {endpoint!r} does not exist: the model's stack is not deployed yet, or was removed",
            reason=FailureReason.ENDPOINT_NOT_FOUND,
            retry_after_seconds=ENDPOINT_NOT_FOUND_RETRY_AFTER_S,
        )
    if code == "ValidationError" and "oversize" in message.lower():
        return PayloadTooLargeError(f"endpoint {endpoint!r} refused the body as too large: {message}")
    return EndpointRejectedError(f"endpoint {endpoint!r} rejected the request ({code}): {message or 'no message'}")
