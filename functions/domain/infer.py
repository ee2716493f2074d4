"""The infer use case: one object owns an infer request from the parsed event to its typed outcome.

It looks the model up, chooses the path (sync, or async when the model is async-only, the caller prefers
it, or the body is too large for sync), validates the body once, calls the sync route within the deadline,
answers a failure with the model's fallback or spills it to an async job, and returns an
:mod:`functions.domain.outcomes` value; a refusal is a raised :class:`InferenceError`. The async submission
(input stored, job recorded, ``invoke_endpoint_async``, the Idempotency-Key) is behind :class:`AsyncJobs`.
No AWS imports here: backends come in behind protocols.

Example:
    >>> use_case = InferUseCase(config, EndpointCaller(SageMakerBackend(), DeadlineBudget(20_000, 300)))
    >>> use_case.infer(InferCall("iris", body), remaining_ms=context.get_remaining_time_in_millis)
    Answered(body=b'{"model_name":"iris",...}')
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from functions.config.caller_policy import CallerPolicy, CallMode
from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.model_types import ModelConfig, ModelsConfig, VersionConfig
from functions.domain.async_jobs import JobView
from functions.domain.caller_policy import permitted_modes, require_mode
from functions.domain.callers import CallerIdentity
from functions.domain.deadline import DeadlineBudget
from functions.domain.endpoint_call import EndpointCaller
from functions.domain.errors import (
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from functions.domain.failures import FailureReason
from functions.domain.fallbacks import fallback_answer
from functions.domain.last_good import LastGoodCache, last_good_key
from functions.domain.model_versions import pick_version, resolve_version
from functions.domain.outcomes import Answered, InferOutcome, JobReceipt, SpilledToAsync, Submitted
from functions.domain.output_contract import OutputContractError, check_answer
from functions.domain.validation import InferRequest, check_request_identity, validate_infer_request

# Kept back from the sync attempt of a model that spills to async, so that after the attempt fails (its
# deadline included) the submit (S3 put, job record, invoke_endpoint_async) still fits before the Lambda's end.
SPILL_RESERVE_MS: Final[int] = 1500


class InProcessBackend(Protocol):
    def predict(self, request: InferRequest) -> bytes: ...


@dataclass(frozen=True)
class IdempotencyScope:
    """A submit with an Idempotency-Key: the same key, caller and model answer the same job; the body's
    digest tells a retried submit from another request under a reused key."""

    key: str
    caller: str | None
    body_sha256: str


class AsyncJobs(Protocol):
    """The async path's port (functions/adapters/async_service.py implements it)."""

    def submit(
        self,
        request: InferRequest,
        *,
        remaining_ms: Callable[[], int],
        budget: DeadlineBudget,
        idempotency: IdempotencyScope | None,
        caller: str | None,
        correlation_id: str | None = None,
    ) -> JobReceipt: ...

    def view(self, job_id: str, *, caller: str | None) -> JobView: ...


@dataclass(frozen=True)
class InferCall:
    """An infer request as the event carried it: the body decoded (not parsed), the caller's preferences."""

    model: str
    body: bytes
    prefer_async: bool = False
    idempotency_key: str | None = None
    caller: str | None = None  # who API Gateway authenticated: an Idempotency-Key is the caller's own
    identity: CallerIdentity = field(default_factory=CallerIdentity)  # the same caller, as the policy names it
    version: str | None = None  # the version the path pins; None: the traffic weights pick one
    correlation_id: str | None = None  # the API request's id: sent to the endpoint, kept on an async job
    routing_key: str | None = None  # X-Routing-Key: keeps the caller's requests on one version (no Idempotency-Key)


def _ignore_version(model: str, version: str) -> None:
    """The default version observer: nothing watches which version serves."""


def _ignore_violation(model: str, check: str) -> None:
    """The default contract observer: nothing counts answers outside the output contract."""


@dataclass(frozen=True)
class InferUseCase:
    config: ModelsConfig
    endpoint: EndpointCaller
    endpoint_name_prefix: str = ""
    # The async path, built on its first use (a sync-only request never pays for it); None: not configured.
    async_jobs: Callable[[], AsyncJobs] | None = None
    in_lambda: InProcessBackend | None = None  # runs ``lambda``-routed models inside the router
    last_good: LastGoodCache = field(default_factory=LastGoodCache)
    caller_policy: CallerPolicy | None = None  # None: every authenticated caller may call every model
    # Told (model, version) once the version that serves the request is known: its metrics are that version's.
    observe_version: Callable[[str, str], None] = _ignore_version
    # Told (model, check) when an answer breaks the model's output contract, whether a fallback answers or not.
    observe_violation: Callable[[str, str], None] = _ignore_violation

    @property
    def budget(self) -> DeadlineBudget:
        return self.endpoint.budget

    def model(self, name: str) -> ModelConfig:
        model = self.config.model(name)
        if model is None:
            raise ModelNotFoundError(f"model {name!r} is not served here")
        return model

    def infer(self, call: InferCall, *, remaining_ms: Callable[[], int]) -> InferOutcome:
        """The outcome of ``call`` within the Lambda's ``remaining_ms()``; raises the refusal's error.

        The caller policy is checked before the body is read: a caller it refuses learns nothing from
        validation errors (nor whether the model exists), and pays for no parsing.
        """
        permitted = permitted_modes(self.caller_policy, call.identity, call.model)
        require_mode(permitted, call.model)
        model = self.model(call.model)
        resolve_version(model, call.version)
        # RFC 7240: a preference the caller may not have is ignored, as for a model without an async route.
        prefer_async = call.prefer_async and "async" in permitted
        entry = pick_version(
            model,
            caller=call.caller,
            sticky_key=call.idempotency_key or call.routing_key,
            body=call.body,
            pinned=call.version,
        )
        async_path, request = self._validated(model, entry, call, permitted, prefer_async=prefer_async)
        pinned = request.document.get("model_version")  # checked: a version of the model, the path's if any
        if call.version is None and isinstance(pinned, str) and pinned != entry.version:
            entry = model.version_by_name[pinned]
            async_path, request = self._validated(model, entry, call, permitted, prefer_async=prefer_async)
        self.observe_version(model.name, entry.version)
        served = model.for_version(entry)
        if served is not model:
            request = dataclasses.replace(request, model=served)
        if async_path:
            return Submitted(self._submit(request, call, remaining_ms), preference_applied=prefer_async)
        try:
            return Answered(self._forward(request, remaining_ms, call.correlation_id), request)
        except (EndpointUnavailableError, EndpointTimeoutError) as error:
            cause = error.reason if isinstance(error, EndpointUnavailableError) else FailureReason.DEADLINE
            degraded = fallback_answer(request, cause, self.last_good)
            if degraded is not None:
                return degraded
            if "async" not in permitted or not self._can_spill(request.model, remaining_ms()):
                raise
        except OutputContractError as error:
            # Not spilled to async: the same model would answer the same question the same way there.
            self.observe_violation(request.model.name, str(error.check))
            degraded = fallback_answer(request, FailureReason.OUTPUT_CONTRACT, self.last_good)
            if degraded is not None:
                return degraded
            raise
        # A refused submit raises its own error (its own 503), not the sync call's.
        return SpilledToAsync(self._submit(request, call, remaining_ms), cause)

    def _validated(
        self, model: ModelConfig, entry: VersionConfig, call: InferCall, permitted: frozenset[CallMode], *,
        prefer_async: bool,
    ) -> tuple[bool, InferRequest]:  # fmt: skip
        """Whether ``entry``'s route takes the request async, and the request validated for that path (the
        async path carries up to the router's own body limit; the sync path, the model's). The caller's
        mode is checked before the body is read."""
        async_path = self._takes_async_path(model.for_version(entry), len(call.body), prefer_async=prefer_async)
        require_mode(permitted, model.name, "async" if async_path else "sync")
        limit = LAMBDA_MAX_BODY_BYTES if async_path else None
        request = validate_infer_request(model, call.body, max_body_bytes=limit)
        check_request_identity(request, call.version)
        return async_path, request

    def _takes_async_path(self, model: ModelConfig, body_bytes: int, *, prefer_async: bool) -> bool:
        """Async when the model is async-only, when the caller prefers it (RFC 7240: a preference, ignored
        for a model without an async route), or when the body is too large for the sync path."""
        route = model.route
        if route.sync is None:
            if self.async_jobs is None:
                raise EndpointUnavailableError(
                    f"model {model.name!r} is served only asynchronously and the async path is not configured here",
                    reason=FailureReason.ASYNC_NOT_CONFIGURED,
                )
            return True
        if not route.allows_async or self.async_jobs is None:
            return False
        if body_bytes > LAMBDA_MAX_BODY_BYTES:
            raise PayloadTooLargeError(
                f"request body is {body_bytes} bytes; even the async path of {model.name!r} "
                f"takes at most {LAMBDA_MAX_BODY_BYTES}"
            )
        return prefer_async or body_bytes > model.limits.max_body_bytes

    def _spills(self, model: ModelConfig) -> bool:
        """Whether a failed sync call of ``model`` is answered with an async job (``resilience.spill_async``)."""
        return model.resilience.spill_async and model.route.allows_async and self.async_jobs is not None

    def _can_spill(self, model: ModelConfig, remaining_ms: int) -> bool:
        """Whether a spill still fits in what the Lambda has left (else the sync error is the answer)."""
        return self._spills(model) and remaining_ms - self.budget.reserve_ms >= SPILL_RESERVE_MS

    def _forward(self, request: InferRequest, remaining_ms: Callable[[], int], correlation_id: str | None) -> bytes:
        route = request.model.route
        if route.sync == "serverless" and route.serverless_endpoint is not None:
            sync_ms = (lambda: remaining_ms() - SPILL_RESERVE_MS) if self._spills(request.model) else remaining_ms
            endpoint = self.endpoint_name_prefix + route.serverless_endpoint
            answer = checked_answer(endpoint, self.endpoint.call(endpoint, request, sync_ms, correlation_id))
            check_answer(request.model, answer)  # before the cache: an answer that breaks it is never reused
            if request.model.resilience.fallback == "last_good":
                self.last_good.put(last_good_key(request), answer)
            return answer
        if route.sync == "lambda" and self.in_lambda is not None:
            answer = self.in_lambda.predict(request)
            check_answer(request.model, answer)
            return answer
        raise EndpointRejectedError(f"model {request.model.name!r} has no synchronous route configured")

    def _submit(self, request: InferRequest, call: InferCall, remaining_ms: Callable[[], int]) -> JobReceipt:
        assert self.async_jobs is not None  # both paths here are taken only when async is configured
        scope = None
        if call.idempotency_key:
            scope = IdempotencyScope(call.idempotency_key, call.caller, hashlib.sha256(call.body).hexdigest())
        return self.async_jobs().submit(
            request,
            remaining_ms=remaining_ms,
            budget=self.budget,
            idempotency=scope,
            caller=call.caller,
            correlation_id=call.correlation_id,
        )


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
