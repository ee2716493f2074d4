"""The infer use case: validate, choose the route, call it within the deadline. No AWS imports here:
backends are passed in behind the :class:`ModelBackend` protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from functions.common.config import ModelConfig, ModelsConfig
from functions.common.errors import EndpointRejectedError, ModelNotFoundError
from functions.routing.deadline import DeadlineBudget
from functions.routing.validation import InferRequest, validate_infer_request


class ModelBackend(Protocol):
    def invoke(self, endpoint: str, body: bytes, *, timeout_ms: int, content_type: str = ...) -> bytes: ...


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

    def model(self, name: str) -> ModelConfig:
        model = self.config.model(name)
        if model is None:
            raise ModelNotFoundError(f"model {name!r} is not served here")
        return model

    def infer(self, model_name: str, body: bytes, *, remaining_ms: int) -> bytes:
        request = validate_infer_request(self.model(model_name), body)
        return self.forward(request, remaining_ms=remaining_ms)

    def forward(self, request: InferRequest, *, remaining_ms: int) -> bytes:
        route = request.model.route
        if route.sync == "serverless" and route.serverless_endpoint is not None:
            endpoint = self.endpoint_name_prefix + route.serverless_endpoint
            timeout_ms = self.budget.invoke_timeout_ms(remaining_ms)
            return self.serverless.invoke(endpoint, request.body, timeout_ms=timeout_ms)
        raise EndpointRejectedError(f"model {request.model.name!r} has no synchronous route configured")
