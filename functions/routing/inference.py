"""The infer use case: validate, choose the route, call it within the deadline. No AWS imports here:
backends are passed in behind the :class:`ModelBackend` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from functions.common.config import LAMBDA_MAX_BODY_BYTES, ModelConfig, ModelsConfig
from functions.common.errors import (
    EndpointRejectedError,
    EndpointUnavailableError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from functions.routing.deadline import DeadlineBudget
from functions.routing.validation import InferRequest, validate_infer_request


class ModelBackend(Protocol):
    def invoke(self, endpoint: str, body: bytes, *, timeout_ms: int, content_type: str = ...) -> bytes: ...


class InProcessBackend(Protocol):
    def predict(self, request: InferRequest) -> bytes: ...


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

    def forward(self, request: InferRequest, *, remaining_ms: int) -> bytes:
        route = request.model.route
        if route.sync == "serverless" and route.serverless_endpoint is not None:
            endpoint = self.endpoint_name_prefix + route.serverless_endpoint
            timeout_ms = self.budget.invoke_timeout_ms(remaining_ms)
            return self.serverless.invoke(endpoint, request.body, timeout_ms=timeout_ms)
        if route.sync == "lambda" and self.in_lambda is not None:
            return self.in_lambda.predict(request)
        raise EndpointRejectedError(f"model {request.model.name!r} has no synchronous route configured")
