"""Router Lambda: the Open Inference Protocol over API Gateway REST (v1 proxy events).

Composition root: settings, config, clients and the resolver are built once per environment, at cold
start. Handlers only parse the event, call the domain and shape the response.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from functions.adapters.in_lambda import InLambdaBackend
from functions.adapters.sagemaker import SageMakerBackend
from functions.config import api_routes as api
from functions.config.async_settings import AsyncSettings
from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.model_types import ModelConfig
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import (
    EndpointTimeoutError,
    EndpointUnavailableError,
    InferenceError,
    JobNotFoundError,
    RouteNotFoundError,
)
from functions.domain.inference import InferenceRouter
from functions.domain.resilience import BreakerRegistry
from functions.domain.validation import validate_infer_request
from functions.handlers.router.responses import error_response, json_response

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from functions.adapters.idempotency import IdempotentSubmitter
    from functions.domain.async_jobs import AsyncJobService

logger = Logger(service="inference-router")
REPO_ROOT = Path(__file__).resolve().parents[3]
settings = RouterSettings.from_env()
async_settings = AsyncSettings.from_env()
config = load_models_config(settings.models_config_path)
serverless_backend = SageMakerBackend()
serverless_backend.warm(settings.invoke_budget_ms)
in_lambda_models = [model for model in config.models if model.route.sync == "lambda"]
in_lambda = (
    InLambdaBackend(Path(settings.model_root) if settings.model_root else REPO_ROOT) if in_lambda_models else None
)
if in_lambda is not None and settings.provisioned_init:
    # Only under provisioned concurrency, whose init no request waits for; an on-demand cold start stays lean.
    in_lambda.warm(in_lambda_models)
router = InferenceRouter(
    config=config,
    serverless=serverless_backend,
    budget=DeadlineBudget(settings.invoke_budget_ms, settings.response_reserve_ms),
    endpoint_name_prefix=settings.endpoint_name_prefix,
    async_available=async_settings is not None,
    in_lambda=in_lambda,
    breakers=BreakerRegistry(on_transition=lambda *change: breaker_changed(*change)),  # noqa: PLW0108 - defined below
)
app = APIGatewayRestResolver()
# RFC 7240: a client asks for a 202 with "Prefer: respond-async"; we say we honoured it in the answer.
RESPOND_ASYNC = "respond-async"


@functools.cache
def async_service() -> AsyncJobService:
    """Built on the first async request, so a sync-only environment never imports the S3/DynamoDB adapters."""
    from functions.adapters.async_service import build_async_service

    assert async_settings is not None  # InferenceRouter only takes the async path when it is configured
    return build_async_service(async_settings, serverless_backend, settings.endpoint_name_prefix, SubmitAnomalies())


class SubmitAnomalies:
    """What a submit reports besides its answer (functions/domain/async_jobs.py ``SubmitEvents``): logged, and
    the one that needs a look (the endpoint has a job the table does not show as queued) counted."""

    def cleanup_failed(self, job_id: str, what: str, error: Exception) -> None:
        logger.warning(
            "a failed submit left something behind", extra={"job_id": job_id, "what": what, "why": repr(error)}
        )

    def queued_unrecorded(self, job_id: str, error: Exception, *, marker: str | None) -> None:
        from aws_lambda_powertools.metrics import MetricUnit, single_metric

        with single_metric(
            name="JobsQueuedUnrecorded", unit=MetricUnit.Count, value=1, namespace="InferenceRouter"
        ) as metric:
            metric.add_dimension(name="marker", value="written" if marker else "missing")
        logger.error(
            "the endpoint accepted the job but the job table was not updated; answered 202 anyway",
            extra={"job_id": job_id, "why": repr(error), "accepted_marker": marker},
        )


@functools.cache
def idempotent_submitter() -> IdempotentSubmitter | None:
    if async_settings is None or async_settings.idempotency_table is None:
        return None
    from functions.adapters.idempotency import IdempotentSubmitter

    return IdempotentSubmitter(async_settings.idempotency_table)


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


def prefers_async() -> bool:
    prefer = app.current_event.headers.get("Prefer") or app.current_event.headers.get("prefer") or ""
    return any(token.split("=")[0].strip().lower() == RESPOND_ASYNC for token in prefer.split(","))


@app.post(api.MODEL_INFER.resolver_path)
def infer(model: str) -> Response[str]:
    body = request_body()
    model_config = router.model(model)
    wants_async = prefers_async()
    if router.takes_async_path(model_config, len(body), prefer_async=wants_async):
        return submit_job(model_config, body, wants_async)
    request = validate_infer_request(model_config, body)
    try:
        # Read now, after validation: the deadline is what is left when the call starts.
        answer = router.forward(request, remaining_ms=app.lambda_context.get_remaining_time_in_millis())
    except (EndpointUnavailableError, EndpointTimeoutError) as error:
        degraded = router.degraded_answer(request, error)
        if degraded is not None:
            return degraded_response(model_config, degraded[0], degraded[1])
        if router.can_spill(model_config, app.lambda_context.get_remaining_time_in_millis()):
            reason = error.reason if isinstance(error, EndpointUnavailableError) else "deadline"
            spilled = submit_job(model_config, body, False)  # a refused submit answers its own 503
            why = f"{reason}; spilled-async"
            count_degraded(model_config, why)
            spilled.headers["X-Inference-Degraded"] = why
            return spilled
        raise
    return Response(status_code=200, content_type="application/json", body=answer.decode("utf-8"))


def breaker_changed(endpoint: str, old: str, new: str, why: str) -> None:
    """Every circuit state change is logged and counted (BreakerTransitions by endpoint and new state)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(
        name="BreakerTransitions", unit=MetricUnit.Count, value=1, namespace="InferenceRouter"
    ) as metric:
        metric.add_dimension(name="endpoint", value=endpoint)
        metric.add_dimension(name="state", value=str(new))
    logger.warning(
        "circuit breaker changed state", extra={"endpoint": endpoint, "from": str(old), "to": str(new), "why": why}
    )


def count_degraded(model: ModelConfig, why: str) -> None:
    """A metric per degraded answer, by model, how it was answered (``reason``: static-fallback, last-good,
    spilled-async) and why the endpoint could not (``cause``: circuit-open, deadline, throttled...). Both sets
    are small and fixed, so the dimensions stay bounded. Powertools' metrics load only on this path."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    cause, _, answered_by = why.rpartition(";")
    with single_metric(name="DegradedAnswers", unit=MetricUnit.Count, value=1, namespace="InferenceRouter") as metric:
        metric.add_dimension(name="model", value=model.name)
        metric.add_dimension(name="reason", value=answered_by.strip())
        metric.add_dimension(name="cause", value=cause.strip())
    logger.warning("degraded answer", extra={"model": model.name, "why": why})


def degraded_response(model: ModelConfig, body: bytes, why: str) -> Response[str]:
    count_degraded(model, why)
    return Response(
        status_code=200,
        content_type="application/json",
        body=body.decode("utf-8"),
        headers={"X-Inference-Degraded": why},
    )


def submit_job(model: ModelConfig, body: bytes, wants_async: bool) -> Response[str]:
    """Validate exactly as the sync path does, then store, record and submit; 202 with the job's URL."""
    request = validate_infer_request(model, body, max_body_bytes=LAMBDA_MAX_BODY_BYTES)
    service = async_service()

    def submit() -> dict[str, Any]:
        # The remaining time is read again right before the endpoint call, capped by the invoke budget.
        job = service.submit(
            request,
            now=int(time.time()),
            remaining_ms=app.lambda_context.get_remaining_time_in_millis,
            budget=router.budget,
        )
        return {"id": job.job_id, "status": job.public_status}

    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get("idempotency-key")
    submitter = idempotent_submitter()
    if key and submitter is not None:
        document = submitter.submit(
            key,
            model=model.name,
            caller=caller_identity(app.current_event.raw_event),
            body_sha256=hashlib.sha256(body).hexdigest(),
            action=submit,
            context=app.lambda_context,
        )
    else:
        document = submit()
    headers = {"Location": f"/v2/jobs/{document['id']}"}
    if wants_async:
        headers["Preference-Applied"] = RESPOND_ASYNC
    logger.info("async job submitted", extra={"job_id": document["id"], "model": model.name})
    return json_response(document, status_code=202, headers=headers)


# Who is calling, as API Gateway authenticated them (IAM user or role, API key, Cognito identity): an
# Idempotency-Key is the caller's own, so another caller's same key never answers with this caller's job.
CALLER_FIELDS = ("userArn", "apiKeyId", "cognitoIdentityId", "caller", "accountId")


def caller_identity(event: dict[str, Any]) -> str | None:
    identity = (event.get("requestContext") or {}).get("identity") or {}
    for name in CALLER_FIELDS:
        value = identity.get(name)
        if value:
            return f"{name}:{value}"
    return None


@app.get(api.JOB_STATUS.resolver_path)
def job_status(job_id: str) -> Response[str]:
    if async_settings is None:
        raise JobNotFoundError(f"job {job_id!r} does not exist: the async path is not configured here")
    return json_response(async_service().view(job_id).document())


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
