"""The router's per-request metrics: one EMF document per infer request (the SLOs and the dashboard read it).

Dimensions are bounded: ``service``, ``model`` (a name from the config, or ``-`` for a model it does not hold)
and ``route`` (``serverless``, ``async``, ``lambda``). The document is built by hand, not by Powertools'
metrics module: a ``json.dumps`` and a ``print`` cost no import on the cold path and about 13 us a request
(``python -m bench.router_overhead`` prints the figure). The request id is a property of the document,
not a dimension: a Logs Insights query finds one request's metrics by it. A degraded answer's
``DegradedAnswers`` (by service, model, reason and cause), the last resort's ``UnhandledErrors`` and the cold
start's ``ColdStarts`` (by service) ride in the same document, so a request writes at most one whatever it came
to (a circuit's state change is counted on its own: functions/handlers/router/telemetry.py). ``CostUsd`` is
what the request used (functions/domain/cost.py), emitted when the CDK gave the router its prices; the first
one an environment emits also counts its on-demand init, which Lambda bills.

``Requests`` and ``CostUsd`` are also published by ``service`` alone, the stage totals the cost alarm reads.

Example document (one line in the log)::

    {"_aws": {"Timestamp": 1700000000000, "CloudWatchMetrics": [{"Namespace": "InferenceRouter",
     "Dimensions": [["service", "model"], ["service", "model", "route"]], "Metrics": [...]},
     {"Namespace": "InferenceRouter", "Dimensions": [["service"]], "Metrics": [{"Name": "Requests", ...},
     {"Name": "CostUsd", ...}]}]},
     "service": "inference-router", "model": "iris", "route": "serverless", "Requests": 1, "ServerErrors": 0,
     "ClientErrors": 0, "DegradedRequests": 0, "SlowRequests": 0, "Latency": 12.5, "EndpointLatency": 9.1,
     "CostUsd": 3.9e-06, "status": 200, "correlation_id": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"}
"""

from __future__ import annotations

import contextvars
import functools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from functions.config.api_routes import INFER_ROUTES
from functions.config.telemetry import (
    CLIENT_ERRORS_METRIC,
    COLD_STARTS_METRIC,
    COST_METRIC,
    DEGRADED_ANSWERS_METRIC,
    DEGRADED_REQUESTS_METRIC,
    ENDPOINT_LATENCY_METRIC,
    LATENCY_METRIC,
    LATENCY_TARGET_DEFAULT_KEY,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTE_DIMENSION,
    ROUTER_SERVICE,
    ROUTER_VERSION_DIMENSION,
    ROUTER_VERSION_VARIABLE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SLOW_REQUESTS_METRIC,
    UNHANDLED_ERRORS_METRIC,
    UNKNOWN_MODEL,
    UNPUBLISHED_VERSION,
    VERSION_DIMENSION,
)
from functions.domain.async_jobs import AsyncEndpoint
from functions.domain.cost import RequestCosting
from functions.domain.endpoint_call import ModelBackend

if TYPE_CHECKING:
    from functions.config.model_types import ModelsConfig
    from functions.domain.infer import InProcessBackend
    from functions.domain.validation import InferRequest

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

INFER_RESOURCES: Final[frozenset[str]] = frozenset(route.resource for route in INFER_ROUTES)
COUNTS: Final[tuple[str, ...]] = (
    REQUESTS_METRIC,
    SERVER_ERRORS_METRIC,
    CLIENT_ERRORS_METRIC,
    DEGRADED_REQUESTS_METRIC,
    SLOW_REQUESTS_METRIC,
)
ASYNC_ROUTE: Final[str] = "async"
# An infer request's metrics also published by service and router version (the rollback alarms' view).
BY_ROUTER_VERSION: Final[tuple[dict[str, str], ...]] = (
    {"Name": REQUESTS_METRIC, "Unit": "Count"},
    {"Name": SERVER_ERRORS_METRIC, "Unit": "Count"},
    {"Name": LATENCY_METRIC, "Unit": "Milliseconds"},
)
# An infer request's metrics also published by service alone, with their units.
_ROLLUP: Final[tuple[tuple[str, str], ...]] = ((REQUESTS_METRIC, "Count"), (COST_METRIC, "None"))
# An infer request's metrics also published by model and the version that served it (canary and rollout views).
BY_MODEL_VERSION: Final[tuple[dict[str, str], ...]] = (
    *({"Name": name, "Unit": "Count"} for name in COUNTS),
    {"Name": LATENCY_METRIC, "Unit": "Milliseconds"},
)
# The API answers a job it accepted (submitted or spilled) with 202.
ACCEPTED_STATUS: Final[int] = 202


@dataclass
class RequestRecord:
    """What one request's metrics need besides its answer: the model named in an infer request's path (None
    for any other route), when it began, the route its endpoint calls took and their time, how it degraded,
    and whether the last resort answered it."""

    model: str | None
    started: float
    correlation_id: str | None
    version: str | None = None  # the model version that served it, once the router picked one
    route: str | None = None
    endpoint_ms: float | None = None
    degraded: tuple[str, str] | None = None  # (reason, cause) of a degraded answer
    unhandled: bool = False
    # The serverless endpoint called, the time of its calls and the bytes they carried in and out (its cost).
    serverless_endpoint: str | None = None
    serverless_ms: float = 0.0
    data_bytes: int = 0


_current: contextvars.ContextVar[RequestRecord | None] = contextvars.ContextVar("router_request", default=None)


def metrics_disabled(environ: Mapping[str, str] = os.environ) -> bool:
    """Powertools' rule, so one switch silences every metric: POWERTOOLS_METRICS_DISABLED, else POWERTOOLS_DEV."""
    disabled = environ.get("POWERTOOLS_METRICS_DISABLED")
    if disabled is not None:
        return disabled.strip().lower() in ("1", "true", "yes", "on", "y", "t")
    return environ.get("POWERTOOLS_DEV", "").strip().lower() in ("1", "true", "yes", "on", "y", "t")


def _directive(dimensions: list[list[str]], metrics: list[dict[str, str]]) -> dict[str, Any]:
    return {"Namespace": METRICS_NAMESPACE, "Dimensions": dimensions, "Metrics": metrics}


class RequestMetrics:
    """Measures each request and writes at most one EMF document for it: an infer request's metrics, a
    degraded answer's, the last resort's ``UnhandledErrors``, and the environment's cold start (once).

    An environment initialised for provisioned concurrency is not counted as a cold start: no request waited
    for its init (functions/config/router_settings.py, ``provisioned_init``).
    """

    def __init__(
        self,
        config: ModelsConfig,
        latency_targets_ms: Mapping[str, float],
        *,
        cold_start: bool,
        clock: Callable[[], float] = time.perf_counter,
        wall_clock: Callable[[], float] = time.time,
        emit: Callable[[str], None] = print,
        costing: RequestCosting | None = None,
        router_version: str | None = None,
    ) -> None:
        self.config = config
        self.costing = costing
        self.latency_targets_ms = latency_targets_ms
        self.cold_start = cold_start
        # The environment's on-demand init, billed with its first request (set by :meth:`initialised`).
        self.init_ms = 0.0
        self.clock = clock
        self.wall_clock = wall_clock
        self.emit = emit
        self.router_version = router_version or os.environ.get(ROUTER_VERSION_VARIABLE, UNPUBLISHED_VERSION)

    def initialised(self, started: float) -> None:
        """The environment's init, begun at ``started`` (this clock), ended now; Lambda bills an on-demand init
        at the duration rate (since 1 August 2025), so the first request whose cost is emitted counts it."""
        self.init_ms = (self.clock() - started) * 1000

    def measured(self, handler: Handler) -> Handler:
        """``handler``, measured: wrap the outermost layer (the last-resort 500 included)."""

        @functools.wraps(handler)
        def measuring(event: dict[str, Any], context: Any) -> dict[str, Any]:
            record = self.begin(event)
            token = _current.set(record)
            try:
                response = handler(event, context)
            finally:
                _current.reset(token)
            self.finish(record, response)
            return response

        return measuring

    def begin(self, event: Any) -> RequestRecord:
        """The request's record; an infer request (by the API resource it matched) names its model."""
        model: Any = None
        context: Any = None
        if isinstance(event, dict):
            context = event.get("requestContext")
            if event.get("resource") in INFER_RESOURCES:
                parameters = event.get("pathParameters")
                model = parameters.get("model") if isinstance(parameters, dict) else None
                model = model if isinstance(model, str) else UNKNOWN_MODEL
        request_id = context.get("requestId") if isinstance(context, dict) else None
        return RequestRecord(
            model=model, started=self.clock(), correlation_id=request_id if isinstance(request_id, str) else None
        )

    @contextmanager
    def endpoint_call(self, route: str) -> Iterator[None]:
        """Times a call to the model (SageMaker, or the model in the router) for the request in flight."""
        record = _current.get()
        started = self.clock()
        try:
            yield
        finally:
            if record is not None:
                record.route = route
                record.endpoint_ms = (record.endpoint_ms or 0.0) + (self.clock() - started) * 1000

    @contextmanager
    def serverless_call(self, endpoint: str, request_bytes: int) -> Iterator[list[bytes]]:
        """Times a serverless endpoint call and counts its data for the request's cost: the caller appends the
        answer's body to the yielded list."""
        record = _current.get()
        answer: list[bytes] = []
        started = self.clock()
        try:
            with self.endpoint_call("serverless"):
                yield answer
        finally:
            if record is not None:
                record.serverless_endpoint = endpoint
                record.serverless_ms += (self.clock() - started) * 1000
                record.data_bytes += request_bytes + sum(len(body) for body in answer)

    def served_by(self, model: str, version: str) -> None:
        """The request in flight is served by ``version`` of ``model`` (the version the router picked)."""
        record = _current.get()
        if record is not None and record.model == model:
            record.version = version

    def degraded(self, reason: str, cause: str) -> None:
        """The request in flight was answered degraded: ``reason`` how (static-fallback, last-good,
        spilled-async), ``cause`` why the endpoint could not (circuit-open, deadline, throttled...)."""
        record = _current.get()
        if record is not None:
            record.degraded = (reason, cause)

    def unhandled(self) -> None:
        """The request in flight raised what nothing handled; the last resort answered 500."""
        record = _current.get()
        if record is not None:
            record.unhandled = True

    def finish(self, record: RequestRecord, response: Any) -> None:
        """Emit the request's document, if it has anything to count."""
        cold, self.cold_start = self.cold_start, False
        if metrics_disabled() or (record.model is None and not cold and not record.unhandled):
            return
        document = self.document(record, response, cold=cold)
        self.emit(json.dumps(document, separators=(",", ":")))

    def document(self, record: RequestRecord, response: Any, *, cold: bool) -> dict[str, Any]:
        directives: list[dict[str, Any]] = []
        document: dict[str, Any] = {SERVICE_DIMENSION: ROUTER_SERVICE}
        if record.model is not None:
            directives.append(self._request_directive(record.model, record, response, document))
            by_version = self._version_directive(record, document)
            if by_version is not None:
                directives.append(by_version)
            if self.router_version != UNPUBLISHED_VERSION:
                # Only a published version is ever deployed (and alarmed on); $LATEST runs locally or when the
                # function is invoked unqualified, where a version's stream would only add custom metrics.
                document[ROUTER_VERSION_DIMENSION] = self.router_version
                directives.append(_directive([[SERVICE_DIMENSION, ROUTER_VERSION_DIMENSION]], list(BY_ROUTER_VERSION)))
        if record.degraded is not None and MODEL_DIMENSION in document:
            document["reason"], document["cause"] = record.degraded
            document[DEGRADED_ANSWERS_METRIC] = 1
            directives.append(
                _directive(
                    [[SERVICE_DIMENSION, MODEL_DIMENSION, "reason", "cause"]],
                    [{"Name": DEGRADED_ANSWERS_METRIC, "Unit": "Count"}],
                )
            )
        # The stage's totals (requests, cost) by service alone: a sum over every model needs no SEARCH, and the
        # rollup rides in the directive the cold start and the last resort use, so it adds two references.
        by_service = [{"Name": name, "Unit": unit} for name, unit in _ROLLUP if name in document]
        if record.unhandled:
            document[UNHANDLED_ERRORS_METRIC] = 1
            by_service.append({"Name": UNHANDLED_ERRORS_METRIC, "Unit": "Count"})
        if cold:
            document[COLD_STARTS_METRIC] = 1
            by_service.append({"Name": COLD_STARTS_METRIC, "Unit": "Count"})
        if by_service:
            directives.append(_directive([[SERVICE_DIMENSION]], by_service))
        return {"_aws": {"Timestamp": int(self.wall_clock() * 1000), "CloudWatchMetrics": directives}, **document}

    def _request_directive(
        self, name: str, record: RequestRecord, response: Any, document: dict[str, Any]
    ) -> dict[str, Any]:
        latency_ms = (self.clock() - record.started) * 1000
        status = _status(response)
        model = self.config.model(name)
        target = (
            self.latency_targets_ms.get(model.name, self.latency_targets_ms.get(LATENCY_TARGET_DEFAULT_KEY))
            if model is not None
            else None
        )
        document.update(
            {
                MODEL_DIMENSION: model.name if model is not None else UNKNOWN_MODEL,
                REQUESTS_METRIC: 1,
                SERVER_ERRORS_METRIC: int(status >= 500),
                CLIENT_ERRORS_METRIC: int(400 <= status < 500),
                DEGRADED_REQUESTS_METRIC: int(record.degraded is not None),
                SLOW_REQUESTS_METRIC: int(target is not None and latency_ms > target),
                LATENCY_METRIC: round(latency_ms, 3),
                "status": status,
                "correlation_id": record.correlation_id,
            }
        )
        metrics = [{"Name": name, "Unit": "Count"} for name in COUNTS]
        metrics.append({"Name": LATENCY_METRIC, "Unit": "Milliseconds"})
        if self.costing is not None:
            init_ms, self.init_ms = self.init_ms, 0.0
            document[COST_METRIC] = self.costing.request_cost(
                router_ms=latency_ms,
                init_ms=init_ms,
                endpoint=record.serverless_endpoint,
                endpoint_ms=record.serverless_ms,
                data_bytes=record.data_bytes,
            )
            metrics.append({"Name": COST_METRIC, "Unit": "None"})
        if record.endpoint_ms is not None:
            document[ENDPOINT_LATENCY_METRIC] = round(record.endpoint_ms, 3)
            metrics.append({"Name": ENDPOINT_LATENCY_METRIC, "Unit": "Milliseconds"})
        dimensions = [[SERVICE_DIMENSION, MODEL_DIMENSION]]
        if model is not None:
            # A job the API accepted took the async route whatever was tried before; else the route the
            # endpoint calls took, or (no call: refused, or answered by a fallback) the model's own.
            accepted = status == ACCEPTED_STATUS
            document[ROUTE_DIMENSION] = ASYNC_ROUTE if accepted else record.route or model.route.sync or ASYNC_ROUTE
            dimensions.append([SERVICE_DIMENSION, MODEL_DIMENSION, ROUTE_DIMENSION])
        return _directive(dimensions, metrics)

    def _version_directive(self, record: RequestRecord, document: dict[str, Any]) -> dict[str, Any] | None:
        """The version set, when a version served the request (a request refused before the pick has none)."""
        if record.version is None or document.get(MODEL_DIMENSION) != record.model:
            return None
        document[VERSION_DIMENSION] = record.version
        return _directive([[SERVICE_DIMENSION, MODEL_DIMENSION, VERSION_DIMENSION]], list(BY_MODEL_VERSION))


def _status(response: Any) -> int:
    """The answer's status (the handler always answers a proxy response; anything else would be a 500)."""
    status = response.get("statusCode") if isinstance(response, dict) else None
    return status if isinstance(status, int) else 500


class ModelCalls(ModelBackend, AsyncEndpoint, Protocol):
    """The SageMaker runtime as the router calls it: sync invokes and async submits."""


class TimedModelCalls:
    """SageMaker calls, each timed for the request in flight (its EndpointLatency and route)."""

    def __init__(self, inner: ModelCalls, metrics: RequestMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes:
        with self.metrics.serverless_call(endpoint, len(body)) as answer:
            answer.append(self.inner.invoke(endpoint, body, attempt_ms=attempt_ms, correlation_id=correlation_id))
            return answer[0]

    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int,
                     correlation_id: str | None = None) -> tuple[str, str | None]:  # fmt: skip
        with self.metrics.endpoint_call(ASYNC_ROUTE):
            return self.inner.invoke_async(
                endpoint, input_location, job_id, timeout_ms=timeout_ms, invocation_timeout_s=invocation_timeout_s,
                request_ttl_s=request_ttl_s, correlation_id=correlation_id,
            )  # fmt: skip


class TimedInProcess:
    """The model in the router, each prediction timed for the request in flight (route ``lambda``)."""

    def __init__(self, inner: InProcessBackend, metrics: RequestMetrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def predict(self, request: InferRequest) -> bytes:
        with self.metrics.endpoint_call("lambda"):
            return self.inner.predict(request)
