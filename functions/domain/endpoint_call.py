"""One sync call to a model's endpoint: retried while transient and within the deadline, never past an
open circuit. The retry policy (functions/domain/retry.py) says when to try again, the breaker
(functions/domain/breaker.py) whether to call at all, the deadline (functions/domain/deadline.py) how long an
attempt may take.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from functions.domain.breaker import BreakerRegistry, BreakerSettings, BreakerState
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import EndpointUnavailableError, InferenceError
from functions.domain.failures import FailureReason
from functions.domain.retry import RetryPolicy, is_retryable
from functions.domain.validation import InferRequest


class ModelBackend(Protocol):
    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes:
        """Call ``endpoint`` within ``attempt_ms()`` milliseconds, read when the call is about to leave (it
        raises EndpointTimeoutError when too little is left); raises only domain errors. ``correlation_id``
        (the API request's id) goes with the call, so the endpoint's logs can name the request."""
        ...


@dataclass(frozen=True)
class EndpointCaller:
    """Example:
    >>> caller = EndpointCaller(SageMakerBackend(), DeadlineBudget(20_000, 300), BreakerRegistry())
    >>> caller.call("prod-iris", request, remaining_ms=context.get_remaining_time_in_millis)
    """

    backend: ModelBackend
    budget: DeadlineBudget
    breakers: BreakerRegistry = field(default_factory=BreakerRegistry)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep

    def call(
        self,
        endpoint: str,
        request: InferRequest,
        remaining_ms: Callable[[], int],
        correlation_id: str | None = None,
    ) -> bytes:
        """The endpoint's answer; raises the last attempt's error, a 503 carrying its final Retry-After."""
        settings = request.model.resilience
        policy = RetryPolicy(settings.base_delay_ms, settings.max_delay_ms, settings.max_attempts)
        breaker = self.breakers.for_endpoint(
            endpoint,
            BreakerSettings(
                settings.breaker_failure_threshold,
                settings.breaker_failure_rate,
                settings.breaker_window_s,
                settings.breaker_min_calls,
                settings.breaker_cooldown_s,
            ),
        )

        def attempt_ms() -> int:
            return self.budget.invoke_timeout_ms(remaining_ms())

        attempt = 0
        while True:
            if not breaker.allow():
                raise EndpointUnavailableError(
                    f"endpoint {endpoint!r} is failing; calls are paused (circuit open)",
                    reason=FailureReason.CIRCUIT_OPEN,
                    retry_after_seconds=breaker.retry_after_s,
                )
            try:
                answer = self.backend.invoke(
                    endpoint, request.body, attempt_ms=attempt_ms, correlation_id=correlation_id
                )
            except InferenceError as error:
                # Every outcome goes to the breaker: transient ones and timeouts count against the endpoint,
                # a final one (the model's own error) frees a half-open probe slot without counting.
                breaker.record(error)
                if not isinstance(error, EndpointUnavailableError) or not is_retryable(error):
                    raise
                # The time left is read after the failed attempt, the reserve kept: the pause and the next
                # attempt must both fit, or the caller gets this error now.
                delay = policy.next_delay_ms(attempt, remaining_ms() - self.budget.reserve_ms, self.rng)
                if delay is None or breaker.state is not BreakerState.CLOSED:
                    open_circuit = breaker.state is not BreakerState.CLOSED
                    wait_s = breaker.retry_after_s if open_circuit else policy.retry_after_s(attempt)
                    raise error.retry_after(wait_s) from error
                self.sleep(delay / 1000)
                attempt += 1
                continue
            breaker.record_success()
            return answer
