"""The infer use case: validate, choose the route, call it within the deadline. No AWS imports here:
backends are passed in behind the :class:`ModelBackend` protocol."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.model_types import ModelConfig, ModelsConfig
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import (
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    InferenceError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from functions.domain.resilience import (
    BreakerRegistry,
    BreakerSettings,
    LastGoodCache,
    RetryPolicy,
    is_retryable,
)
from functions.domain.validation import InferRequest, validate_infer_request


class ModelBackend(Protocol):
    def invoke(self, endpoint: str, body: bytes, *, timeout_ms: int, content_type: str = ...) -> bytes: ...


class InProcessBackend(Protocol):
    def predict(self, request: InferRequest) -> bytes: ...


# Kept back from the sync attempt of a model that spills to async, so that after the attempt fails (its
# deadline included) the submit (S3 put, job record, invoke_endpoint_async) still fits before the Lambda's end.
SPILL_RESERVE_MS = 1500


@dataclass(frozen=True)
class InferenceRouter:
    """Answers infer requests for the configured models.

    Example:
        >>> router = InferenceRouter(config, serverless=SageMakerBackend(), budget=DeadlineBudget(20_000, 300))
        >>> router.infer("iris", body, remaining_ms=context.get_remaining_time_in_millis())
    """

    config: ModelsConfig
    serverless: ModelBackend
    budget: DeadlineBudget
    endpoint_name_prefix: str = ""
    async_available: bool = False  # the environment configures the async path (bucket and job table)
    in_lambda: InProcessBackend | None = None  # runs ``lambda``-routed models inside the router
    breakers: BreakerRegistry = field(default_factory=BreakerRegistry)
    last_good: LastGoodCache = field(default_factory=LastGoodCache)
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def model(self, name: str) -> ModelConfig:
        model = self.config.model(name)
        if model is None:
            raise ModelNotFoundError(f"model {name!r} is not served here")
        return model

    def takes_async_path(self, model: ModelConfig, body_bytes: int, *, prefer_async: bool) -> bool:
        """Async when the model is async-only, when the caller prefers it (RFC 7240: a preference, ignored
        for a model without an async route), or when the body is too large for the sync path."""
        route = model.route
        if route.sync is None:
            if not self.async_available:
                raise EndpointUnavailableError(
                    f"model {model.name!r} is served only asynchronously and the async path is not configured here",
                    reason="async-not-configured",
                )
            return True
        if not route.allows_async or not self.async_available:
            return False
        if body_bytes > LAMBDA_MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                f"request body is {body_bytes} bytes; even the async path of {model.name!r} "
                f"takes at most {LAMBDA_MAX_BODY_BYTES}"
            )
        return prefer_async or body_bytes > model.limits.max_body_bytes

    def infer(self, model_name: str, body: bytes, *, remaining_ms: int) -> bytes:
        request = validate_infer_request(self.model(model_name), body)
        return self.forward(request, remaining_ms=remaining_ms)

    def spills(self, model: ModelConfig) -> bool:
        """Whether a failed sync call of ``model`` is answered with an async job (``resilience.spill_async``)."""
        return model.resilience.spill_async and model.route.allows_async and self.async_available

    def can_spill(self, model: ModelConfig, remaining_ms: int) -> bool:
        """Whether a spill still fits in what the Lambda has left (else the sync error is the answer)."""
        return self.spills(model) and remaining_ms - self.budget.reserve_ms >= SPILL_RESERVE_MS

    def forward(self, request: InferRequest, *, remaining_ms: int) -> bytes:
        route = request.model.route
        if route.sync == "serverless" and route.serverless_endpoint is not None:
            sync_ms = remaining_ms - SPILL_RESERVE_MS if self.spills(request.model) else remaining_ms
            endpoint = self.endpoint_name_prefix + route.serverless_endpoint
            answer = checked_answer(endpoint, self._call_endpoint(request, endpoint, sync_ms))
            if request.model.resilience.fallback == "last_good":
                self.last_good.put(last_good_key(request), answer)
            return answer
        if route.sync == "lambda" and self.in_lambda is not None:
            return self.in_lambda.predict(request)
        raise EndpointRejectedError(f"model {request.model.name!r} has no synchronous route configured")

    def _call_endpoint(self, request: InferRequest, endpoint: str, remaining_ms: int) -> bytes:
        """Call within the deadline, retrying only the transient, never past an open circuit."""
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
        started = self.clock()
        attempt = 0
        while True:
            if not breaker.allow():
                raise EndpointUnavailableError(
                    f"endpoint {endpoint!r} is failing; calls are paused (circuit open)",
                    reason="circuit-open",
                    retry_after_seconds=breaker.retry_after_s,
                )
            left_ms = remaining_ms - (self.clock() - started) * 1000
            try:
                answer = self.serverless.invoke(
                    endpoint, request.body, timeout_ms=self.budget.invoke_timeout_ms(int(left_ms))
                )
            except InferenceError as error:
                # Every outcome goes to the breaker: transient ones and timeouts count against the endpoint,
                # a final one (the model's own error) frees a half-open probe slot without counting.
                breaker.record(error)
                if not is_retryable(error) or not isinstance(error, EndpointUnavailableError):
                    raise
                left_ms = remaining_ms - (self.clock() - started) * 1000 - self.budget.reserve_ms
                delay = policy.next_delay_ms(attempt, left_ms, self.rng)
                if delay is None or breaker.state != "closed":
                    error.retry_after_seconds = (
                        breaker.retry_after_s if breaker.state != "closed" else policy.retry_after_s(attempt)
                    )
                    raise
                self.sleep(delay / 1000)
                attempt += 1
                continue
            breaker.record_success()
            return answer

    def degraded_answer(self, request: InferRequest, error: Exception) -> tuple[bytes, str] | None:
        """The configured fallback for a request the endpoint could not answer: (OIP body, why), or None."""
        settings = request.model.resilience
        if not isinstance(error, EndpointUnavailableError | EndpointTimeoutError):
            return None
        reason = error.reason if isinstance(error, EndpointUnavailableError) else "deadline"
        if settings.fallback == "static" and settings.static_response is not None:
            document = {"model_name": request.model.name, "model_version": request.model.version,
                        **settings.static_response}  # fmt: skip
            if request.request_id is not None:
                document["id"] = request.request_id
            return json.dumps(document, separators=(",", ":")).encode(), f"{reason}; static-fallback"
        if settings.fallback == "last_good":
            cached = self.last_good.get(last_good_key(request))
            if cached is not None:
                try:
                    document = json.loads(cached)
                except ValueError:  # an answer that passed checked_answer but is not whole JSON: no fallback
                    return None
                document.pop("id", None)  # the cached answer was for another request
                if request.request_id is not None:
                    document["id"] = request.request_id
                return json.dumps(document, separators=(",", ":")).encode(), f"{reason}; last-good"
        return None


def checked_answer(endpoint: str, answer: bytes) -> bytes:
    """The endpoint's answer if it can be an OIP JSON response (UTF-8, a JSON object), else a 502.

    Cheap on purpose (a decode and one character): the full answer is passed through, not parsed, on the hot
    path; an HTML error page or a binary body from a broken container is caught here instead of crashing.
    """
    try:
        text = answer.decode("utf-8")
    except UnicodeDecodeError:
        raise EndpointRejectedError(f"endpoint {endpoint!r} answered a body that is not UTF-8 JSON") from None
    if not text.lstrip().startswith("{"):
        raise EndpointRejectedError(f"endpoint {endpoint!r} answered a body that is not an OIP JSON object")
    return answer


def last_good_key(request: InferRequest) -> str:
    """The inputs and requested outputs, canonical: the same question gets the same cached answer."""
    document = json.loads(request.body)
    canonical = json.dumps({"inputs": document.get("inputs"), "outputs": list(request.requested_outputs)},
                           sort_keys=True, separators=(",", ":"))  # fmt: skip
    return LastGoodCache.key(request.model.name, canonical.encode())
