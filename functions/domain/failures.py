"""Why a call failed and how a degraded request was answered: the two closed vocabularies of the router.

:class:`FailureReason` is every reason an :class:`~functions.domain.errors.EndpointUnavailableError` (503) or a
degraded answer names; the adapters map AWS error codes onto it and the retry policy decides on it. Its
values are the strings callers and dashboards see (the ``X-Inference-Degraded`` header, the ``cause``
dimension of ``DegradedAnswers``), so they never change. :class:`DegradedBy` is how a degraded answer was
made (the header's second half, the metric's ``reason`` dimension).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class FailureReason(StrEnum):
    # The endpoint answered "try again later" (SageMaker error codes, or a bare HTTP status from a proxy).
    THROTTLED = "throttled"
    MODEL_NOT_READY = "model-not-ready"
    INTERNAL_FAILURE = "internal-failure"
    SERVICE_UNAVAILABLE = "service-unavailable"
    INTERNAL_DEPENDENCY = "internal-dependency"
    BAD_GATEWAY = "bad-gateway"
    GATEWAY_TIMEOUT = "gateway-timeout"
    # No endpoint of that name: a model whose stack is not deployed yet (the router learns a model when the
    # platform deploys, its endpoint comes with the model's stack after) or was removed. Not retried within a
    # request: creating an endpoint takes minutes.
    ENDPOINT_NOT_FOUND = "endpoint-not-found"
    # Refused, reset or half-answered connection.
    CONNECTION_ERROR = "connection-error"
    # The router did not call: the endpoint's circuit is open.
    CIRCUIT_OPEN = "circuit-open"
    # No answer within the deadline (a timeout is a 504; this is its name as a degraded answer's cause).
    DEADLINE = "deadline"
    # The async endpoint did not acknowledge a submit in time.
    SUBMIT_TIMEOUT = "submit-timeout"
    ASYNC_NOT_CONFIGURED = "async-not-configured"
    # A store of the async path failed transiently (functions/adapters/aws_errors.py).
    JOB_TABLE_UNAVAILABLE = "job-table-unavailable"
    OBJECT_STORE_UNAVAILABLE = "object-store-unavailable"
    IDEMPOTENCY_TABLE_UNAVAILABLE = "idempotency-table-unavailable"
    # The endpoint answered outside the model's declared output contract (functions/domain/output_contract.py):
    # only ever a degraded answer's cause; the answer itself is a 502, never retried (the model would say it again).
    OUTPUT_CONTRACT = "output-contract"

    @property
    def retryable(self) -> bool:
        """Whether a later attempt may cure it (the retry policy retries only these)."""
        return self in RETRYABLE_REASONS

    @property
    def spent_the_deadline(self) -> bool:
        """Unavailable, but it is the deadline that ran out: another attempt cannot fit."""
        return self in DEADLINE_REASONS


# Only the transient endpoint failures are retried: throttling, warming up, failing internally or unreachable.
RETRYABLE_REASONS: Final[frozenset[FailureReason]] = frozenset(
    {
        FailureReason.THROTTLED,
        FailureReason.MODEL_NOT_READY,
        FailureReason.INTERNAL_FAILURE,
        FailureReason.SERVICE_UNAVAILABLE,
        FailureReason.INTERNAL_DEPENDENCY,
        FailureReason.BAD_GATEWAY,
        FailureReason.GATEWAY_TIMEOUT,
        FailureReason.CONNECTION_ERROR,
    }
)
DEADLINE_REASONS: Final[frozenset[FailureReason]] = frozenset({FailureReason.SUBMIT_TIMEOUT})


class DegradedBy(StrEnum):
    """How a request the endpoint could not answer was answered anyway (``resilience`` in models.json)."""

    STATIC_FALLBACK = "static-fallback"
    LAST_GOOD = "last-good"
    SPILLED_ASYNC = "spilled-async"
