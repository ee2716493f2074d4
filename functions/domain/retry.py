"""The retry policy of the sync path: which failures are retried, how long to wait, what ``Retry-After`` says.

Only transient failures are retried (:data:`functions.domain.failures.RETRYABLE_REASONS`): the endpoint
throttling, warming up, failing internally or unreachable. Never a model error or a refused request: those
would fail the same way again. A timeout is not retried either: it has spent the deadline. Pure Python; the
randomness comes in as a value.

Example:
    >>> policy = RetryPolicy(base_delay_ms=50, max_delay_ms=1000, max_attempts=3)
    >>> delay = policy.next_delay_ms(attempt, remaining_ms, rng) if is_retryable(error) else None
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import Enum
from typing import Final

from functions.domain.deadline import MIN_ATTEMPT_MS
from functions.domain.errors import EndpointTimeoutError, EndpointUnavailableError

_DEFAULT_RNG: Final[random.Random] = random.Random()  # noqa: S311 - jitter, not secrets


class ErrorClass(Enum):
    """What a failed endpoint call means for the retry policy and the circuit breaker."""

    RETRYABLE = "retryable"  # transient: retry while the deadline allows; an endpoint failure
    DEADLINE = "deadline"  # no answer in time: never retried (the budget is spent); an endpoint failure
    FINAL = "final"  # the endpoint answered with a refusal or a model error, or we never called it

    @property
    def retryable(self) -> bool:
        return self is ErrorClass.RETRYABLE

    @property
    def endpoint_failure(self) -> bool:
        """Whether the call counts against the endpoint's circuit breaker."""
        return self is not ErrorClass.FINAL


def classify(error: BaseException) -> ErrorClass:
    """The class of an error raised by a backend call.

    ``ModelFailedError``, ``InvalidRequestError``, ``EndpointRejectedError``, ``PayloadTooLargeError`` and
    anything unknown are FINAL: they would fail the same way again, and they say nothing against the
    endpoint's health. So is an ``EndpointUnavailableError`` raised without calling the endpoint
    (``circuit-open``, ``async-not-configured``).
    """
    if isinstance(error, EndpointTimeoutError):
        return ErrorClass.DEADLINE
    if isinstance(error, EndpointUnavailableError):
        if error.reason.retryable:
            return ErrorClass.RETRYABLE
        if error.reason.spent_the_deadline:
            return ErrorClass.DEADLINE
    return ErrorClass.FINAL


def is_retryable(error: BaseException) -> bool:
    return classify(error).retryable


def retry_after_seconds(*, backoff_ms: float | None = None, cooldown_left_s: float | None = None) -> int:
    """The ``Retry-After`` for a 429/503: the longer of the next backoff and the breaker's remaining
    cooldown, rounded up to whole seconds (the header has no fractions), at least 1 (0 invites a storm).

    Example:
        >>> retry_after_seconds(backoff_ms=200)
        1
        >>> retry_after_seconds(backoff_ms=200, cooldown_left_s=4.2)
        5
    """
    wait_s = max((backoff_ms or 0.0) / 1000.0, cooldown_left_s or 0.0)
    return max(1, math.ceil(wait_s))


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff, and only while another attempt still fits in the deadline.

    Attempts are 0-based: after attempt 0 fails, ``next_delay_ms(0, ...)`` says how long to wait before
    attempt 1, or None to stop and answer now.

    Example:
        >>> policy = RetryPolicy(base_delay_ms=50, max_delay_ms=800, max_attempts=3)
        >>> policy.next_delay_ms(0, remaining_ms=5_000, rng=random.Random(1))
        7
        >>> policy.next_delay_ms(2, remaining_ms=5_000, rng=random.Random(1)) is None  # third attempt was the last
        True
    """

    base_delay_ms: float = 50.0
    max_delay_ms: float = 1_000.0
    max_attempts: int = 3
    min_attempt_ms: float = MIN_ATTEMPT_MS  # an attempt with less time than this would only time out

    def __post_init__(self) -> None:
        if self.base_delay_ms < 0 or self.max_delay_ms < 0:
            raise ValueError("retry delays must not be negative")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts {self.max_attempts} must be at least 1")

    def ceiling_ms(self, attempt: int) -> float:
        """The upper bound of the backoff after ``attempt`` failed: base * 2**attempt, capped."""
        # min() first on the exponent keeps 2**attempt from overflowing a float for absurd attempt counts.
        return min(self.max_delay_ms, self.base_delay_ms * 2.0 ** min(attempt, 64))

    def delay_ms(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, ceiling]."""
        return (rng or _DEFAULT_RNG).uniform(0.0, self.ceiling_ms(attempt))

    def next_delay_ms(self, attempt: int, remaining_ms: float, rng: random.Random | None = None) -> int | None:
        """The pause before attempt ``attempt + 1`` (0-based ``attempt`` just failed), or None: stop now.

        None when the attempts are used up, or when after the pause less than ``min_attempt_ms`` would be
        left of ``remaining_ms`` (the time left after the response reserve) for the next attempt.
        """
        if attempt + 1 >= self.max_attempts:
            return None
        delay = math.ceil(self.delay_ms(attempt, rng))
        if remaining_ms - delay < self.min_attempt_ms:
            return None
        return delay

    def retry_after_s(self, attempt: int) -> int:
        """What a caller should wait after ``attempt`` failed: the next backoff's upper bound, in whole seconds."""
        return retry_after_seconds(backoff_ms=self.ceiling_ms(attempt))
