"""Router Lambda: the Open Inference Protocol over API Gateway REST (v1 proxy events).

Composition root: settings, config, clients and the resolver are built once per environment, at cold
start. Handlers only parse the event, call the domain and shape the response.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from functions.adapters.sagemaker import SageMakerBackend
from functions.common import api
from functions.common.config import ModelConfig, load_models_config
from functions.common.errors import InferenceError, RouteNotFoundError
from functions.router.responses import error_response, json_response
from functions.router.settings import RouterSettings
from functions.routing.deadline import DeadlineBudget
from functions.routing.inference import InferenceRouter

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger(service="inference-router")
settings = RouterSettings.from_env()
config = load_models_config(settings.models_config_path)
serverless_backend = SageMakerBackend()
serverless_backend.warm(settings.invoke_budget_ms)
router = InferenceRouter(
    config=config,
    serverless=serverless_backend,
    budget=DeadlineBudget(settings.invoke_budget_ms, settings.response_reserve_ms),
    endpoint_name_prefix=settings.endpoint_name_prefix,
)
app = APIGatewayRestResolver()


def request_body() -> bytes:
    event = app.current_event
    body = event.body or ""
    return base64.b64decode(body) if event.is_base64_encoded else body.encode("utf-8")


def model_metadata(model: ModelConfig) -> dict[str, Any]:
    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)} for spec in specs]

    return {
        "name": model.name,
        "versions": [model.version],
        "platform": model.platform,
        "inputs": tensors(model.inputs),
        "outputs": tensors(model.outputs),
    }


@app.get(api.SERVER_METADATA.resolver_path)
def server_metadata() -> Response[str]:
    return json_response({"name": config.server.name, "version": config.server.version, "extensions": []})


@app.get(api.HEALTH_LIVE.resolver_path)
def health_live() -> Response[str]:
    return json_response({"live": True})


@app.get(api.HEALTH_READY.resolver_path)
def health_ready() -> Response[str]:
    return json_response({"ready": True})


@app.get(api.MODEL_METADATA.resolver_path)
def get_model_metadata(model: str) -> Response[str]:
    return json_response(model_metadata(router.model(model)))


@app.get(api.MODEL_READY.resolver_path)
def model_ready(model: str) -> Response[str]:
    return json_response({"name": router.model(model).name, "ready": True})


@app.post(api.MODEL_INFER.resolver_path)
def infer(model: str) -> Response[str]:
    remaining_ms = app.lambda_context.get_remaining_time_in_millis()
    answer = router.infer(model, request_body(), remaining_ms=remaining_ms)
    return Response(status_code=200, content_type="application/json", body=answer.decode("utf-8"))


@app.exception_handler(InferenceError)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
def handle_inference_error(error: InferenceError) -> Response[str]:
    response = error_response(error)
    logger.info("request refused", extra={"status": response.status_code, "error": error.message})
    return response


@app.not_found
def handle_not_found(_: Exception) -> Response[str]:
    event = app.current_event
    return error_response(RouteNotFoundError(f"no resource {event.http_method} {event.path}"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
