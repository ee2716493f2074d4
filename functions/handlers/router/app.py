"""The router's composition: :func:`create_app` wires settings and clients into the infer use case and the
Powertools REST resolver, and returns the Lambda handler with them. ``handler.py`` builds one at cold start
from the environment; tests and the local stack build their own (a fresh app is a fresh environment: its
own breakers, last-good cache and async path).

The route functions only parse the event (body decoded once, ``Prefer``, ``Idempotency-Key``, the caller
API Gateway authenticated), call the use case and map its outcome to HTTP (``responses.py``).
"""

from __future__ import annotations

import functools
import random
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.api_gateway import APIGatewayRestResolver, Response
from aws_lambda_powertools.logging import correlation_paths

from functions.config import api_routes as api
from functions.config.models import load_models_config
from functions.config.telemetry import ROUTER_SERVICE
from functions.domain.breaker import BreakerRegistry
from functions.domain.callers import CallerIdentity
from functions.domain.deadline import DeadlineBudget
from functions.domain.echo import clip, clip_message
from functions.domain.endpoint_call import EndpointCaller, ModelBackend
from functions.domain.errors import InferenceError, JobNotFoundError, RouteNotFoundError
from functions.domain.infer import AsyncJobs, InferCall, InferUseCase, InProcessBackend
from functions.domain.last_good import LastGoodCache
from functions.domain.model_versions import ROUTING_KEY_HEADER, model_versions, resolve_version
from functions.domain.outcomes import Degraded, SpilledToAsync, Submitted
from functions.domain.readiness import EndpointStatusCache, EndpointStatusPort, ReadinessCheck
from functions.handlers.router.binary_bodies import header_length, plain_json_body
from functions.handlers.router.caller import caller_identity
from functions.handlers.router.capture import CapturingShipping
from functions.handlers.router.costing import SizesFactory, parameter_sizes, request_costing
from functions.handlers.router.event_parts import prefers_async, request_body
from functions.handlers.router.request_metrics import RequestMetrics, TimedInProcess, TimedModelCalls
from functions.handlers.router.responses import (
    BINARY_TENSOR_EXTENSION,
    error_response,
    internal_error,
    json_response,
    outcome_response,
)
from functions.handlers.router.shadow_shipping import ShadowShipping
from functions.handlers.router.telemetry import (
    BreakerLog,
    ContractViolations,
    StatusLookupFailures,
    SubmitAnomalies,
    count_degraded,
)

if TYPE_CHECKING:
    from functions.config.async_settings import AsyncSettings
    from functions.config.model_types import ModelConfig, ModelsConfig
    from functions.config.router_settings import RouterSettings
    from functions.domain.async_jobs import AsyncEndpoint, SubmitEvents

REPO_ROOT = Path(__file__).resolve().parents[3]
# The protocol's health API: "a 200 status code indicates true and a 4xx status code indicates false".
NOT_READY_STATUS = 400


class SageMakerPort(ModelBackend, Protocol):
    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int,
                     correlation_id: str | None = None) -> tuple[str, str | None]: ...  # fmt: skip


# (async settings, the async endpoint, endpoint name prefix, submit events) -> the async path
AsyncJobsFactory = Callable[["AsyncSettings", "AsyncEndpoint", str, "SubmitEvents"], AsyncJobs]


def aws_async_jobs(settings: AsyncSettings, endpoint: AsyncEndpoint, prefix: str, events: SubmitEvents) -> AsyncJobs:
    """The async path on S3 and DynamoDB, imported on its first use: a sync-only request never loads it."""
    from functions.adapters.async_service import build_async_jobs

    return build_async_jobs(settings, endpoint, prefix, events)


class InLambdaPort(InProcessBackend, Protocol):
    def warm(self, models: Sequence[ModelConfig]) -> list[str]: ...

    def loadable(self, model: ModelConfig) -> bool: ...


def in_lambda_backend(model_root: Path) -> InLambdaPort:
    from functions.adapters.in_lambda import InLambdaBackend

    return InLambdaBackend(model_root)


def aws_endpoint_status() -> EndpointStatusPort:
    """DescribeEndpoint, imported and its client made on the first ready request: infer never loads it."""
    from functions.adapters.endpoint_status import SageMakerEndpointStatus

    return SageMakerEndpointStatus()


@dataclass(frozen=True)
class RouterClients:
    """What the router calls: the SageMaker runtime, the async path's factory, the in-Lambda models, the
    endpoint status the ready routes read (built on first use), the clock, sleep and randomness the retry
    loop, the breakers and the status cache use, and where the shadow lines go (stdout in Lambda)."""

    sagemaker: SageMakerPort
    async_jobs: AsyncJobsFactory = aws_async_jobs
    endpoint_status: Callable[[], EndpointStatusPort] = aws_endpoint_status
    in_lambda: Callable[[Path], InLambdaPort] = in_lambda_backend
    endpoint_sizes: SizesFactory = parameter_sizes  # each serverless endpoint's size, for the request's cost
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    log_sink: Callable[[str], None] = print
    metrics_sink: Callable[[str], None] = print  # the EMF documents (stdout in Lambda; local mode keeps them too)


@dataclass(frozen=True)
class RouterApp:
    """A router environment: call it as the Lambda handler."""

    settings: RouterSettings
    async_settings: AsyncSettings | None
    clients: RouterClients
    config: ModelsConfig
    use_case: InferUseCase
    resolver: APIGatewayRestResolver
    logger: Logger
    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    in_lambda: InProcessBackend | None
    readiness: ReadinessCheck

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self.handler(event, context)

    def async_jobs(self) -> AsyncJobs:
        if self.use_case.async_jobs is None:
            raise JobNotFoundError("the async path is not configured here")
        return self.use_case.async_jobs()


def create_app(
    settings: RouterSettings,
    async_settings: AsyncSettings | None,
    clients: RouterClients,
    *,
    init_started: float | None = None,
) -> RouterApp:
    """``init_started``: when the environment's init began (``time.perf_counter``); an on-demand init's
    duration is then part of its first request's cost."""
    logger = Logger(service=ROUTER_SERVICE)
    config = load_models_config(settings.models_config_path)
    in_lambda_models = config.in_lambda_models()
    in_lambda = (
        clients.in_lambda(Path(settings.model_root) if settings.model_root else REPO_ROOT) if in_lambda_models else None
    )
    if in_lambda is not None and settings.provisioned_init:
        # Only under provisioned concurrency, whose init no request waits for; an on-demand cold start stays lean.
        in_lambda.warm(in_lambda_models)
    costing = request_costing(settings, clients.endpoint_sizes, logger.warning)
    metrics = RequestMetrics(
        config,
        settings.latency_targets_ms,
        cold_start=not settings.provisioned_init,
        costing=costing,
        emit=clients.metrics_sink,
    )
    sagemaker = TimedModelCalls(clients.sagemaker, metrics)
    async_jobs: Callable[[], AsyncJobs] | None = None
    if async_settings is not None:
        configured = async_settings
        events = SubmitAnomalies(logger)
        async_jobs = functools.cache(
            lambda: clients.async_jobs(configured, sagemaker, settings.endpoint_name_prefix, events)
        )
    budget = DeadlineBudget(settings.invoke_budget_ms, settings.response_reserve_ms)
    breakers = BreakerRegistry(clock=clients.clock, on_transition=BreakerLog(logger))
    use_case = InferUseCase(
        config=config,
        endpoint=EndpointCaller(sagemaker, budget, breakers, clients.rng, clients.sleep),
        endpoint_name_prefix=settings.endpoint_name_prefix,
        async_jobs=async_jobs,
        in_lambda=TimedInProcess(in_lambda, metrics) if in_lambda is not None else None,
        last_good=LastGoodCache(max_bytes=settings.last_good_max_bytes),
        caller_policy=settings.caller_policy,
        observe_version=metrics.served_by,
        observe_violation=ContractViolations(logger),
    )
    readiness = ReadinessCheck(
        config,
        settings.endpoint_name_prefix,
        breakers,
        EndpointStatusCache(
            functools.cache(clients.endpoint_status), clock=clients.clock, on_failure=StatusLookupFailures(logger)
        ),
        async_configured=async_settings is not None,
        in_lambda=in_lambda,
    )
    shipping = CapturingShipping(config, clients.log_sink, settings.capture_sample_rate)
    resolver = routes(use_case, config, logger, readiness, metrics, shipping=shipping)
    handler = metrics.measured(
        last_resort(
            logger,
            metrics,
            logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)(resolver.resolve),
        )
    )
    if init_started is not None and settings.on_demand_init:
        metrics.initialised(init_started)
    return RouterApp(
        settings, async_settings, clients, config, use_case, resolver, logger, handler, in_lambda, readiness
    )


def routes(
    use_case: InferUseCase, config: ModelsConfig, logger: Logger, readiness: ReadinessCheck, metrics: RequestMetrics,
    *, shipping: ShadowShipping,
) -> APIGatewayRestResolver:  # fmt: skip
    """The resolver with every route of functions/config/api_routes.py.

    Readiness answers as the protocol's health API says: 200 when ready, a 4xx when not (400, which is what
    a probe reads as false without paging on the API's 5XX alarms), the body JSON either way.
    """
    app = APIGatewayRestResolver()

    @app.get(api.SERVER_METADATA.resolver_path)
    def server_metadata() -> Response[str]:
        return json_response(
            {"name": config.server.name, "version": config.server.version, "extensions": [BINARY_TENSOR_EXTENSION]}
        )

    @app.get(api.HEALTH_LIVE.resolver_path)
    def health_live() -> Response[str]:
        return json_response({"live": True})

    @app.get(api.HEALTH_READY.resolver_path)
    def health_ready() -> Response[str]:
        readiness_now = readiness.server()
        if not readiness_now.ready:
            logger.info("server not ready", extra={"why": readiness_now.reason})
        return json_response({"ready": readiness_now.ready}, 200 if readiness_now.ready else NOT_READY_STATUS)

    @app.get(api.MODEL_METADATA.resolver_path)
    def get_model_metadata(model: str) -> Response[str]:
        return json_response(model_metadata(use_case.model(model)))

    @app.get(api.MODEL_VERSION_METADATA.resolver_path)
    def get_model_version_metadata(model: str, version: str) -> Response[str]:
        resolve_version(use_case.model(model), version)
        return get_model_metadata(model)

    @app.get(api.MODEL_READY.resolver_path)
    def model_ready(model: str) -> Response[str]:
        found = use_case.model(model)
        readiness_now = readiness.model(found)
        if not readiness_now.ready:
            logger.info("model not ready", extra={"model": found.name, "why": readiness_now.reason})
        return json_response(
            {"name": found.name, "ready": readiness_now.ready}, 200 if readiness_now.ready else NOT_READY_STATUS
        )

    @app.get(api.MODEL_VERSION_READY.resolver_path)
    def model_version_ready(model: str, version: str) -> Response[str]:
        resolve_version(use_case.model(model), version)
        return model_ready(model)

    @app.post(api.MODEL_INFER.resolver_path)
    def infer(model: str) -> Response[str]:
        return answer_infer(model, None)

    @app.post(api.MODEL_VERSION_INFER.resolver_path)
    def infer_version(model: str, version: str) -> Response[str]:
        return answer_infer(model, version)

    def answer_infer(model: str, version: str | None) -> Response[str]:
        event = app.current_event
        request_context = event.raw_event.get("requestContext") or {}
        identity = CallerIdentity.from_request_identity(request_context.get("identity") or {})
        body, encoding = plain_json_body(
            use_case, model, identity, request_body(event.raw_event), header_length(event.headers)
        )
        call = InferCall(
            model=model,
            version=version,
            body=body,
            prefer_async=prefers_async(event.headers.get("Prefer") or event.headers.get("prefer") or ""),
            idempotency_key=event.headers.get("Idempotency-Key") or event.headers.get("idempotency-key"),
            routing_key=event.headers.get(ROUTING_KEY_HEADER) or event.headers.get(ROUTING_KEY_HEADER.lower()),
            caller=caller_identity(event.raw_event),
            identity=identity,
            correlation_id=request_id if isinstance(request_id := request_context.get("requestId"), str) else None,
        )
        outcome = shipping.infer(use_case, call, event.headers, app.lambda_context.get_remaining_time_in_millis)
        if isinstance(outcome, Degraded | SpilledToAsync):
            count_degraded(logger, metrics, model, outcome)
        if isinstance(outcome, Submitted | SpilledToAsync):
            logger.info("async job submitted", extra={"job_id": outcome.job.job_id, "model": model})
        return outcome_response(outcome, encoding)

    @app.get(api.JOB_STATUS.resolver_path)
    def job_status(job_id: str) -> Response[str]:
        # The id as API Gateway matched it, whole: the resolver's own route pattern ends in "$", which lets its
        # match stop before a trailing newline, so its ``job_id`` would drop a decoded %0A and look the id up.
        job_id = (app.current_event.path_parameters or {}).get("job_id", job_id)
        if use_case.async_jobs is None:
            raise JobNotFoundError(f"job {clip(job_id)} does not exist: the async path is not configured here")
        view = use_case.async_jobs().view(job_id, caller=caller_identity(app.current_event.raw_event))
        return json_response(view.document())

    @app.exception_handler(InferenceError)  # type: ignore[untyped-decorator]  # Powertools leaves it untyped
    def handle_inference_error(error: InferenceError) -> Response[str]:
        response = error_response(error)
        logger.info("request refused", extra={"status": response.status_code, "error": clip_message(error.message)})
        return response

    @app.not_found
    def handle_not_found(_: Exception) -> Response[str]:
        return error_response(
            RouteNotFoundError(
                f"no resource {clip(app.current_event.http_method, 16, quote=False)} "
                f"{clip(app.current_event.path, 200, quote=False)}"
            )
        )

    return app


def last_resort(
    logger: Logger, metrics: RequestMetrics, handler: Callable[[dict[str, Any], Any], dict[str, Any]]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """``handler``, answering a JSON 500 for any exception it raises: a Lambda error would reach the caller as
    API Gateway's 502 and page on-call through the router-errors alarm. Logged (type, clipped message, where)
    and counted (``UnhandledErrors``, in the request's metrics document)."""

    @functools.wraps(handler)
    def guarded(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            return handler(event, context)
        except Exception as error:  # any at all: the last resort is the point
            frame = traceback.extract_tb(error.__traceback__)[-1]
            logger.error(
                "unhandled error, answered 500",
                extra={
                    "type": type(error).__name__,
                    "error": clip(str(error), 200),
                    "at": f"{frame.filename}:{frame.lineno}",
                },
            )
            metrics.unhandled()
            return internal_error()

    return guarded


def model_metadata(model: ModelConfig) -> dict[str, Any]:
    def tensors(specs: Any) -> list[dict[str, Any]]:
        return [{"name": spec.name, "datatype": spec.datatype, "shape": list(spec.shape)} for spec in specs]

    return {
        "name": model.name,
        "versions": list(model_versions(model)),
        "platform": model.platform,
        "inputs": tensors(model.inputs),
        "outputs": tensors(model.outputs),
    }
