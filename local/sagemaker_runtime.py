"""A local SageMaker runtime: the real sagemaker-runtime REST protocol on 127.0.0.1, so unmodified boto3
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) reaches real ONNX models through the production serving code.

Protocol (rest-json, as botocore's service model describes it):
``POST /endpoints/{EndpointName}/invocations`` answers the container's body with ``Content-Type`` and
``x-Amzn-Invoked-Production-Variant``; an error is a status, header ``x-amzn-ErrorType: <Code>`` and
body ``{"message": ...}`` (plus the ModelError fields), from which boto3 raises the modelled exception.

``POST /endpoints/{EndpointName}/async-invocations`` serves the endpoints registered as async
(:class:`AsyncEndpointSpec`) the way an async endpoint does: the input is an S3 object named in
``X-Amzn-SageMaker-InputLocation``; the call answers 202 with ``{"InferenceId"}`` and the output and failure
locations in headers; a worker pool (``max_concurrent_invocations`` per endpoint, like
``MaxConcurrentInvocationsPerInstance``) reads the input, runs the model, writes ``<uuid>.out`` under the
output path or ``<uuid>-error.out`` under the failure path, and publishes SageMaker's ``InferenceResult``
notification to the success or error SNS topic. S3 and SNS are whatever ``aws_endpoint_url`` serves
(moto's server in local mode, see ``local/aws.py``).

Faults can be set per endpoint while it runs, from code (:meth:`LocalSageMakerRuntime.set_fault`) or
over HTTP (``PUT /_local/faults/{endpoint}`` with a :class:`FaultSpec` JSON body, ``GET /_local/faults`` to
read them back with the sync calls in flight, ``DELETE /_local/faults``): error rates by type, latency
distributions, cold-start windows (also after scaling to zero) and throttling above a concurrency limit.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import queue
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from functions.config.models import SERVERLESS_MAX_BODY_BYTES
from serving.server import read_body, write_answer
from serving.service import Answer

if TYPE_CHECKING:
    from collections.abc import Callable

    from serving.service import InvocationService

ACCOUNT_ID: Final[str] = "123456789012"
REGION: Final[str] = "us-east-1"
INVOKE_PATH: Final[re.Pattern[str]] = re.compile(r"^/endpoints/([^/]+)/invocations$")
ASYNC_INVOKE_PATH: Final[re.Pattern[str]] = re.compile(r"^/endpoints/([^/]+)/async-invocations$")
S3_URI: Final[re.Pattern[str]] = re.compile(r"^s3://([^/]+)/(.+)$")
# InvokeEndpointAsync's documented bounds and defaults (API reference, InvokeEndpointAsync).
REQUEST_TTL_S: Final[tuple[int, int, int]] = (60, 21_600, 21_600)  # min, max, default
INVOCATION_TIMEOUT_S: Final[tuple[int, int, int]] = (1, 3_600, 900)
INFERENCE_ID_MAX: Final[int] = 64
logger = logging.getLogger(__name__)
FAULT_PATH: Final[re.Pattern[str]] = re.compile(r"^/_local/faults/([^/]+)$")
# How SageMaker answers each error (design.md): status code, and whether its message is null.
ERROR_STATUS: Final[dict[str, int]] = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
}
# Not an AWS error code: the runtime closes the connection without answering (a network failure).
DROP_CONNECTION: Final[str] = "DropConnection"


class FaultSpecError(ValueError):
    """A fault spec names an unknown error or an impossible rate."""


# z of the 99th percentile of a standard normal: a lognormal's p99 is median * exp(2.326 * sigma).
Z_P99: Final[float] = 2.3263478740408408
LATENCY_FIELDS: Final[dict[str, frozenset[str]]] = {
    "fixed": frozenset({"ms"}),
    "uniform": frozenset({"min_ms", "max_ms"}),
    "lognormal": frozenset({"median_ms", "p99_ms", "max_ms"}),
}


@dataclass(frozen=True, slots=True)
class LatencySpec:
    """How long the endpoint takes before it answers, drawn per call: ``fixed`` (``ms``), ``uniform``
    (``min_ms``..``max_ms``) or ``lognormal`` (``median_ms`` and ``p99_ms``, optionally capped at ``max_ms``),
    the long-tailed shape real model latencies take."""

    distribution: str = "fixed"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float | None = None
    median_ms: float = 0.0
    p99_ms: float = 0.0

    def __post_init__(self) -> None:
        if self.distribution not in LATENCY_FIELDS:
            raise FaultSpecError(f"latency distribution {self.distribution!r} is not one of {sorted(LATENCY_FIELDS)}")
        if min(self.ms, self.min_ms, self.median_ms, self.p99_ms, self.max_ms or 0.0) < 0:
            raise FaultSpecError("latencies must not be negative")
        if self.distribution == "uniform" and (self.max_ms is None or self.max_ms < self.min_ms):
            raise FaultSpecError("a uniform latency needs max_ms >= min_ms")
        if self.distribution == "lognormal" and not 0 < self.median_ms <= self.p99_ms:
            raise FaultSpecError("a lognormal latency needs 0 < median_ms <= p99_ms")

    @classmethod
    def from_json(cls, document: Any) -> LatencySpec:
        if not isinstance(document, dict) or not isinstance(document.get("distribution", "fixed"), str):
            raise FaultSpecError(
                'latency is an object like {"distribution": "lognormal", "median_ms": 20, "p99_ms": 400}'
            )
        distribution = document.get("distribution", "fixed")
        allowed = LATENCY_FIELDS.get(distribution, frozenset())
        unknown = set(document) - allowed - {"distribution"}
        if distribution in LATENCY_FIELDS and unknown:
            raise FaultSpecError(f"unknown field {sorted(unknown)[0]!r} for a {distribution} latency")
        return cls(**document)

    def draw_ms(self, rng: random.Random) -> float:
        if self.distribution == "fixed":
            return self.ms
        if self.distribution == "uniform":
            return rng.uniform(self.min_ms, self.max_ms if self.max_ms is not None else self.min_ms)
        sigma = math.log(self.p99_ms / self.median_ms) / Z_P99
        drawn = rng.lognormvariate(math.log(self.median_ms), sigma)
        return min(drawn, self.max_ms) if self.max_ms is not None else drawn


FAULT_FIELDS: Final[frozenset[str]] = frozenset(
    {"error", "error_rate", "errors", "latency_ms", "latency", "model_status", "drop_notification_rate",
     "cold_start_s", "scale_to_zero_after_s", "max_concurrency", "seed"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What an endpoint does wrong. Setting a spec replaces the endpoint's previous one.

    - ``error`` fails ``error_rate`` of calls with that code; ``errors`` maps codes to rates, e.g.
      ``{"ThrottlingException": 0.05, "ModelError": 0.02}`` (one draw per call picks at most one; the rates
      may add up to at most 1). ``model_status`` is the container status a ``ModelError`` reports as
      ``OriginalStatusCode``.
    - ``latency_ms`` delays every call by a fixed time; ``latency`` draws the delay from a
      :class:`LatencySpec` instead (not both).
    - ``cold_start_s``: for that long after the spec is set, every sync call answers ``ModelNotReadyException``
      as a serverless endpoint still provisioning does; with ``scale_to_zero_after_s`` the endpoint also
      goes cold again once no sync call has reached it for that long, and the next call opens a new window.
    - ``max_concurrency``: a sync call arriving while that many are already in flight on the endpoint is
      refused with ``ThrottlingException``, as serverless ``MaxConcurrency`` does.
    - ``seed`` makes this spec's draws (``errors``, ``latency``) replay; without it they are seeded from the
      runtime's generator (:meth:`LocalSageMakerRuntime.seed`) when the spec is set.

    On async endpoints a ``ModelError`` is accepted at submit and fails the job in the worker (failure object
    + error notification); every other error refuses the submit itself; the latency slows the model in
    the worker (past ``InvocationTimeoutSeconds`` the job fails); ``drop_notification_rate`` loses
    notifications. Cold starts and ``max_concurrency`` apply to sync calls only: an async endpoint queues.
    """

    error: str | None = None
    error_rate: float = 1.0
    latency_ms: float = 0.0
    model_status: int = 500
    # Async only: the output (or failure) object is written but this share of SNS notifications is never
    # published, as when a notification is lost; the sweeper must settle such jobs.
    drop_notification_rate: float = 0.0
    errors: dict[str, float] = field(default_factory=dict)
    latency: LatencySpec | None = None
    cold_start_s: float = 0.0
    scale_to_zero_after_s: float | None = None
    max_concurrency: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        known = ", ".join([*ERROR_STATUS, DROP_CONNECTION])
        for code in [*([self.error] if self.error is not None else []), *self.errors]:
            if code not in ERROR_STATUS and code != DROP_CONNECTION:
                raise FaultSpecError(f"unknown error {code!r} (known: {known})")
        if not 0.0 <= self.error_rate <= 1.0:
            raise FaultSpecError(f"error_rate {self.error_rate} must lie in [0, 1]")
        if isinstance(self.model_status, bool) or not isinstance(self.model_status, int):
            raise FaultSpecError(f"model_status {self.model_status!r} must be an HTTP status code (an integer)")
        if not 400 <= self.model_status <= 599:
            raise FaultSpecError(f"model_status {self.model_status} must be a 4xx or 5xx status: it is an error")
        for code, rate in self.errors.items():
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
                raise FaultSpecError(f"errors[{code!r}] rate {rate!r} must lie in [0, 1]")
        if sum(self.errors.values()) > 1.0 + 1e-9:
            raise FaultSpecError(f"the rates in errors add up to {sum(self.errors.values()):g}, more than 1")
        if self.error is not None and self.error in self.errors:
            raise FaultSpecError(f"{self.error!r} is both error and a key of errors: name it once")
        if not 0.0 <= self.drop_notification_rate <= 1.0:
            raise FaultSpecError(f"drop_notification_rate {self.drop_notification_rate} must lie in [0, 1]")
        if self.latency_ms < 0:
            raise FaultSpecError(f"latency_ms {self.latency_ms} must not be negative")
        if self.latency_ms and self.latency is not None:
            raise FaultSpecError("give latency_ms or latency, not both")
        if self.cold_start_s < 0:
            raise FaultSpecError(f"cold_start_s {self.cold_start_s} must not be negative")
        if self.scale_to_zero_after_s is not None and (self.scale_to_zero_after_s <= 0 or not self.cold_start_s):
            raise FaultSpecError("scale_to_zero_after_s must be positive and needs cold_start_s")
        if self.max_concurrency is not None and (isinstance(self.max_concurrency, bool) or self.max_concurrency < 1):
            raise FaultSpecError(f"max_concurrency {self.max_concurrency} must be at least 1")

    @classmethod
    def from_json(cls, document: Any) -> FaultSpec:
        if not isinstance(document, dict):
            raise FaultSpecError("a fault spec is a JSON object")
        unknown = set(document) - FAULT_FIELDS
        if unknown:
            raise FaultSpecError(f"unknown fault field {sorted(unknown)[0]!r}")
        fields = dict(document)
        if "errors" in fields and not isinstance(fields["errors"], dict):
            raise FaultSpecError('errors is an object of error code to rate, e.g. {"ThrottlingException": 0.05}')
        if fields.get("latency") is not None:
            fields["latency"] = LatencySpec.from_json(fields["latency"])
        return cls(**fields)

    @property
    def uses_random_draws(self) -> bool:
        return bool(self.errors) or (self.latency is not None and self.latency.distribution != "fixed")


class ActiveFault:
    """A spec as it runs on one endpoint: its own generator and its cold-start window."""

    def __init__(self, spec: FaultSpec, rng: random.Random, now: float) -> None:
        self.spec = spec
        self.rng = rng
        self.lock = threading.Lock()
        self.set_at = now
        self.cold_until = now + spec.cold_start_s

    def is_cold(self, now: float, idle_since: float | None) -> bool:
        """Whether a sync call arriving ``now`` finds the endpoint cold; ``idle_since`` is when the last call
        left it (None while calls are in flight or before the first)."""
        spec = self.spec
        with self.lock:
            if (
                spec.scale_to_zero_after_s is not None
                and idle_since is not None
                # Idle time before the spec was set does not count: setting it is a fresh deployment.
                and now - max(idle_since, self.set_at) >= spec.scale_to_zero_after_s
                and now >= self.cold_until
            ):
                self.cold_until = now + spec.cold_start_s  # scaled to zero: this call starts it again
            return now < self.cold_until

    def draw_error(self) -> str | None:
        """At most one error code from ``errors``: one draw per call, walked against the cumulative rates."""
        if not self.spec.errors:
            return None
        with self.lock:
            draw = self.rng.random()
        cumulative = 0.0
        for code, rate in self.spec.errors.items():
            cumulative += rate
            if draw < cumulative:
                return code
        return None

    def draw_latency_ms(self) -> float:
        if self.spec.latency is None:
            return self.spec.latency_ms
        with self.lock:
            return self.spec.latency.draw_ms(self.rng)


def error_answer(code: str, message: str | None, **fields: Any) -> tuple[Answer, dict[str, str]]:
    body = json.dumps({"message": message, **fields}).encode()
    return Answer(ERROR_STATUS[code], body), {
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"
    }


@dataclass(frozen=True, slots=True)
class AsyncEndpointSpec:
    """An async endpoint: its serving code and its ``AsyncInferenceConfig`` (output/failure S3 paths, topics).

    Paths are ``s3://bucket/prefix/`` URIs; a topic of None means no notification, as in SageMaker.
    """

    service: InvocationService
    output_path: str
    failure_path: str
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_concurrent_invocations: int = 4

    def __post_init__(self) -> None:
        for name, path in (("output_path", self.output_path), ("failure_path", self.failure_path)):
            if not path.startswith("s3://") or not path.endswith("/") or "/" not in path[len("s3://") :]:
                raise ValueError(f"{name} {path!r} must be an s3://bucket/prefix/ URI ending in '/'")
        if self.max_concurrent_invocations < 1:
            raise ValueError(f"max_concurrent_invocations {self.max_concurrent_invocations} must be at least 1")


@dataclass(frozen=True, slots=True)
class AsyncJob:
    """One accepted async invocation; every random fault decision is drawn at submit, so a seeded runtime
    fails the same jobs whatever order the workers run them in."""

    endpoint: str
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str
    received: datetime
    request_ttl_s: int
    invocation_timeout_s: int
    content_type: str | None
    accept: str | None
    custom_attributes: str | None
    latency_ms: float
    model_error_status: int | None
    drop_notification: bool


@dataclass
class AsyncStats:
    """What the async workers did since start (or :meth:`LocalSageMakerRuntime.reset_async_stats`)."""

    accepted: int = 0
    refused: int = 0
    completed: int = 0
    failed: int = 0
    notifications_published: int = 0
    notifications_dropped: int = 0
    worker_errors: list[str] = field(default_factory=list)


class LocalSageMakerRuntime:
    """Serves ``endpoints`` (name → serving code) on ``host:port``; port 0 picks a free one.

    ``async_endpoints`` (name → :class:`AsyncEndpointSpec`) are served on ``/async-invocations`` only, with
    S3 and SNS reached at ``aws_endpoint_url`` (required when there are any) under fake credentials.

    Example:
        >>> runtime = LocalSageMakerRuntime({"iris": service}).start()
        >>> os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime.url
        >>> spec = AsyncEndpointSpec(service, "s3://bucket/output/", "s3://bucket/failure/")
        >>> runtime = LocalSageMakerRuntime({}, async_endpoints={"iris-async": spec}, aws_endpoint_url=aws.url)
    """

    def __init__(
        self,
        endpoints: dict[str, InvocationService],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        async_endpoints: dict[str, AsyncEndpointSpec] | None = None,
        aws_endpoint_url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.endpoints = endpoints
        self.async_endpoints = dict(async_endpoints or {})
        self._faults: dict[str, ActiveFault] = {}
        self._random = random.Random()
        self._random_lock = threading.Lock()
        self._clock = clock
        # Sync calls in flight per endpoint, and when the last one left (for max_concurrency and scale to zero);
        # tracked whether or not a fault is set, so a throttle set mid-load sees the load already there.
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._idle_since: dict[str, float] = {}
        self._flight_lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._make_handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self._s3: Any = None
        self._sns: Any = None
        if self.async_endpoints:
            if aws_endpoint_url is None:
                raise ValueError("async endpoints need aws_endpoint_url: where their S3 objects and SNS topics live")
            from local.aws import aws_client  # local.aws imports this module: resolve at call time

            self._s3 = aws_client("s3", aws_endpoint_url)
            self._sns = aws_client("sns", aws_endpoint_url)
        self._queues: dict[str, queue.Queue[AsyncJob | None]] = {name: queue.Queue() for name in self.async_endpoints}
        self._workers: list[threading.Thread] = []
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.async_stats = AsyncStats()
        # Sync invocations that reached each endpoint (retries included): what resilience tests count.
        self.sync_invocations: collections.Counter[str] = collections.Counter()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalSageMakerRuntime:
        for name, spec in self.async_endpoints.items():
            for index in range(spec.max_concurrent_invocations):
                worker = threading.Thread(
                    target=self._work, args=(self._queues[name],), name=f"local-sagemaker-async-{name}-{index}",
                    daemon=True,
                )  # fmt: skip
                worker.start()
                self._workers.append(worker)
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-sagemaker", daemon=True)
        self._thread.start()
        return self

    def stop(self, drain_timeout_s: float = 0.0) -> None:
        """Stop answering, let the workers finish the invocation each holds, and drop what is still queued
        (as deleting an endpoint does); ``drain_timeout_s`` first waits that long for the queue to empty."""
        if drain_timeout_s > 0:
            self.wait_async_idle(drain_timeout_s)
        self._server.shutdown()
        self._server.server_close()
        self._stopping.set()
        for name, spec in self.async_endpoints.items():
            for _ in range(spec.max_concurrent_invocations):
                self._queues[name].put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        self._workers.clear()

    def wait_async_idle(self, timeout: float) -> bool:
        """Wait until every accepted async invocation has its output or failure written and its
        notification published (or dropped); False when ``timeout`` seconds pass first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def reset_async_stats(self) -> None:
        self.async_stats = AsyncStats()

    def set_fault(self, endpoint: str, fault: FaultSpec) -> None:
        """Make ``endpoint`` misbehave from now on (replacing its previous fault); a cold-start window opens now."""
        if fault.seed is not None:
            rng = random.Random(fault.seed)
        elif fault.uses_random_draws:
            with self._random_lock:
                rng = random.Random(self._random.getrandbits(64))
        else:
            # No draw from the runtime's generator: older specs replay exactly as they did before.
            rng = random.Random(0)
        self._faults[endpoint] = ActiveFault(fault, rng, self._clock())

    def fault(self, endpoint: str) -> FaultSpec | None:
        active = self._faults.get(endpoint)
        return active.spec if active is not None else None

    def clear_faults(self) -> None:
        self._faults.clear()

    def in_flight(self, endpoint: str) -> int:
        with self._flight_lock:
            return self._in_flight[endpoint]

    def seed(self, value: int) -> None:
        with self._random_lock:
            self._random.seed(value)

    def _chance(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._random_lock:  # one draw per decision, in submit order, so a seed replays a run
            return self._random.random() < rate

    def invoke(self, endpoint: str, body: bytes) -> tuple[Answer, dict[str, str]] | None:
        """One invocation as SageMaker answers it; None means: drop the connection."""
        service = self.endpoints.get(endpoint)
        if service is None:
            return error_answer("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")
        if len(body) > SERVERLESS_MAX_BODY_BYTES:
            # SageMaker refuses a payload over the serverless limit before any container sees it (design.md).
            return error_answer(
                "ValidationError",
                f"Request payload is oversize: {len(body)} bytes; endpoint {endpoint} accepts at most "
                f"{SERVERLESS_MAX_BODY_BYTES} bytes.",
            )
        with self._random_lock:
            self.sync_invocations[endpoint] += 1
        with self._flight_lock:
            self._in_flight[endpoint] += 1
            in_flight = self._in_flight[endpoint]
            idle_since = self._idle_since.pop(endpoint, None) if in_flight == 1 else None
        try:
            active = self._faults.get(endpoint)
            code = self._sync_fault(active, in_flight, idle_since) if active is not None else None
            if active is not None and code is not None:
                return self._injected_error(endpoint, code, active.spec.model_status)
            answer = service.invoke(body)
            if answer.status >= 400:
                return self._model_error(endpoint, answer.status, answer.body.decode("utf-8", "replace"))
            return answer, {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        finally:
            with self._flight_lock:
                self._in_flight[endpoint] -= 1
                if self._in_flight[endpoint] == 0:
                    self._idle_since[endpoint] = self._clock()

    def _sync_fault(self, active: ActiveFault, in_flight: int, idle_since: float | None) -> str | None:
        """The error code one sync call is answered with (after the injected latency), or None: answer normally."""
        fault = active.spec
        # Refusals come first and fast, as SageMaker's front end answers them before any container runs.
        if active.is_cold(self._clock(), idle_since):
            return "ModelNotReadyException"
        if fault.max_concurrency is not None and in_flight > fault.max_concurrency:
            return "ThrottlingException"
        latency_ms = active.draw_latency_ms()
        if latency_ms:
            time.sleep(latency_ms / 1000)
        return self._draw_error(active)

    def _draw_error(self, active: ActiveFault) -> str | None:
        # The single-error draw comes from the runtime's generator, as it always has, so seeded runs of
        # older specs replay the same failures.
        fault = active.spec
        if fault.error is not None and self._chance(fault.error_rate):
            return fault.error
        return active.draw_error()

    def _injected_error(self, endpoint: str, code: str, model_status: int) -> tuple[Answer, dict[str, str]] | None:
        if code == DROP_CONNECTION:
            return None
        if code == "ModelError":
            return self._model_error(endpoint, model_status, json.dumps({"error": "injected model failure"}))
        if code == "ThrottlingException":
            return error_answer("ThrottlingException", None)  # SageMaker sends a null message here
        messages = {
            "ModelNotReadyException": f"Model for endpoint {endpoint} is not ready yet. Please retry after some time.",
            "ValidationError": f"Endpoint {endpoint} rejected the request.",
        }
        return error_answer(code, messages.get(code, f"{code} (injected)"))

    def _model_error(self, endpoint: str, status: int, message: str) -> tuple[Answer, dict[str, str]]:
        kind = "client" if status < 500 else "server"
        log_stream = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
        return error_answer(
            "ModelError",
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See {log_stream} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=log_stream,
        )

    def submit_async(self, endpoint: str, headers: Any) -> tuple[Answer, dict[str, str]] | None:
        """One ``InvokeEndpointAsync`` as SageMaker answers it (``headers``: the request's, any mapping with
        ``get``); None means: drop the connection."""
        spec = self.async_endpoints.get(endpoint)
        if spec is None:
            if endpoint in self.endpoints:
                return error_answer(
                    "ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} is not an asynchronous endpoint."
                )
            return error_answer("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")
        input_location = headers.get("X-Amzn-SageMaker-InputLocation") or ""
        if S3_URI.match(input_location) is None:
            return error_answer("ValidationError", f"InputLocation {input_location!r} is not a valid S3 URI.")
        inference_id = headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        if len(inference_id) > INFERENCE_ID_MAX or not inference_id.isascii() or inference_id[0].isspace():
            return error_answer("ValidationError", f"InferenceId {inference_id!r} is not valid.")
        try:
            ttl = _bounded(headers, "X-Amzn-SageMaker-RequestTTLSeconds", "RequestTTLSeconds", REQUEST_TTL_S)
            timeout = _bounded(
                headers, "X-Amzn-SageMaker-InvocationTimeoutSeconds", "InvocationTimeoutSeconds", INVOCATION_TIMEOUT_S
            )
        except ValueError as error:
            return error_answer("ValidationError", str(error))

        active = self._faults.get(endpoint) or ActiveFault(FaultSpec(), random.Random(0), self._clock())
        fault = active.spec
        model_error_status: int | None = None
        code = self._draw_error(active)
        if code is not None:
            if code != "ModelError":
                # Every error but a model's refuses the submit itself: nothing is queued or written.
                self._count("refused")
                return self._injected_error(endpoint, code, fault.model_status)
            model_error_status = fault.model_status
        # SageMaker names the objects with its own id, not the InferenceId: callers must use the returned locations.
        object_id = str(uuid.uuid4())
        job = AsyncJob(
            endpoint=endpoint,
            inference_id=inference_id,
            input_location=input_location,
            output_location=f"{spec.output_path}{object_id}.out",
            failure_location=f"{spec.failure_path}{object_id}-error.out",
            received=datetime.now(UTC),
            request_ttl_s=ttl,
            invocation_timeout_s=timeout,
            content_type=headers.get("X-Amzn-SageMaker-Content-Type"),
            accept=headers.get("X-Amzn-SageMaker-Accept"),
            custom_attributes=headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            latency_ms=active.draw_latency_ms(),
            model_error_status=model_error_status,
            drop_notification=self._chance(fault.drop_notification_rate),
        )
        with self._idle:
            self._pending += 1
            self.async_stats.accepted += 1
        self._queues[endpoint].put(job)
        body = json.dumps({"InferenceId": inference_id}).encode()
        return Answer(202, body), {
            "X-Amzn-SageMaker-OutputLocation": job.output_location,
            "X-Amzn-SageMaker-FailureLocation": job.failure_location,
        }

    def _work(self, jobs: queue.Queue[AsyncJob | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                if not self._stopping.is_set():
                    self._run_async(job)
            except Exception as error:  # a broken emulator must not hang wait_async_idle: record and go on
                logger.exception("async invocation %s failed inside the local runtime", job.inference_id)
                with self._idle:
                    self.async_stats.worker_errors.append(f"{job.inference_id}: {type(error).__name__}: {error}")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _count(self, name: str) -> None:
        with self._idle:
            setattr(self.async_stats, name, getattr(self.async_stats, name) + 1)

    def _run_async(self, job: AsyncJob) -> None:
        spec = self.async_endpoints[job.endpoint]
        waited_s = (datetime.now(UTC) - job.received).total_seconds()
        if waited_s > job.request_ttl_s:
            self._fail(job, spec, b"", f"ClientError: Request expired after waiting {waited_s:.0f} s in the queue.")
            return
        bucket, key = _split_s3_uri(job.input_location)
        try:
            body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:
            reason = f"ClientError: Unable to read input from {job.input_location}: {error}"
            self._fail(job, spec, json.dumps({"error": reason}).encode(), reason)
            return
        if job.latency_ms:
            # A model slower than InvocationTimeoutSeconds is cut off at the timeout, as SageMaker does.
            time.sleep(min(job.latency_ms / 1000, job.invocation_timeout_s))
            if job.latency_ms / 1000 >= job.invocation_timeout_s:
                reason = f"ServerError: Model did not respond within {job.invocation_timeout_s} seconds."
                self._fail(job, spec, json.dumps({"error": reason}).encode(), reason)
                return
        if job.model_error_status is not None:
            answer = Answer(job.model_error_status, json.dumps({"error": "injected model failure"}).encode())
        else:
            answer = spec.service.invoke(body)
        if answer.status >= 400:
            kind = "client" if answer.status < 500 else "server"
            message = answer.body.decode("utf-8", "replace")
            reason = (
                f'ClientError: Received {kind} error ({answer.status}) from model with message "{message}". '
                f"See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
                f"group=/aws/sagemaker/Endpoints/{job.endpoint} in account {ACCOUNT_ID} for more information."
            )
            self._fail(job, spec, answer.body, reason)
            return
        out_bucket, out_key = _split_s3_uri(job.output_location)
        self._s3.put_object(Bucket=out_bucket, Key=out_key, Body=answer.body, ContentType=answer.content_type)
        self._count("completed")
        notification = self._notification(
            job, "Completed", {"contentType": answer.content_type, "outputLocation": job.output_location}
        )
        self._notify(job, spec.success_topic_arn, notification)

    def _fail(self, job: AsyncJob, spec: AsyncEndpointSpec, body: bytes, reason: str) -> None:
        bucket, key = _split_s3_uri(job.failure_location)
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        self._count("failed")
        notification = self._notification(
            job, "Failed", {"contentType": "application/json", "failureLocation": job.failure_location}, reason
        )
        self._notify(job, spec.error_topic_arn, notification)

    def _notification(
        self, job: AsyncJob, status: str, response: dict[str, str], failure_reason: str | None = None
    ) -> dict[str, Any]:
        """SageMaker's ``InferenceResult`` event, key for key (SageMaker guide: "Check prediction results")."""
        request: dict[str, str] = {}
        for name, value in (("contentType", job.content_type), ("accept", job.accept),
                            ("customAttributes", job.custom_attributes)):  # fmt: skip
            if value is not None:
                request[name] = value
        request["endpointName"] = job.endpoint
        request["inputLocation"] = job.input_location
        notification: dict[str, Any] = {
            "awsRegion": REGION,
            "eventTime": _timestamp(datetime.now(UTC)),
            "receivedTime": _timestamp(job.received),
            "invocationStatus": status,
        }
        if failure_reason is not None:
            notification["failureReason"] = failure_reason
        notification["requestParameters"] = request
        notification["responseParameters"] = response
        notification["inferenceId"] = job.inference_id
        notification.update({"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "InferenceResult"})
        return notification

    def _notify(self, job: AsyncJob, topic_arn: str | None, notification: dict[str, Any]) -> None:
        if topic_arn is None:
            return
        if job.drop_notification:
            self._count("notifications_dropped")
            return
        self._sns.publish(TopicArn=topic_arn, Message=json.dumps(notification))
        self._count("notifications_published")

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        runtime = self

        class RuntimeHandler(BaseHTTPRequestHandler):
            # Without TCP_NODELAY, botocore's keep-alive connection waits ~40 ms (delayed ACK) on every answer.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                async_match = ASYNC_INVOKE_PATH.match(self.path)
                if async_match is not None:
                    self._answer_async(async_match.group(1))
                    return
                match = INVOKE_PATH.match(self.path)
                body = read_body(self)
                if body is None:
                    return
                if match is None:
                    answer, headers = error_answer("ValidationError", f"Unknown operation {self.path}")
                    write_answer(self, answer, headers)
                    return
                result = runtime.invoke(match.group(1), body)
                if result is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                answer, headers = result
                write_answer(self, answer, {"x-amzn-RequestId": str(uuid.uuid4()), **headers})

            def _answer_async(self, endpoint: str) -> None:
                # InvokeEndpointAsync sends no body; read whatever was sent so the connection stays usable.
                length = self.headers.get("Content-Length", "0")
                if length.isdigit() and int(length):
                    self.rfile.read(int(length))
                result = runtime.submit_async(endpoint, self.headers)
                if result is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                answer, headers = result
                write_answer(self, answer, {"x-amzn-RequestId": str(uuid.uuid4()), **headers})

            def do_PUT(self) -> None:
                match = FAULT_PATH.match(self.path)
                body = read_body(self)
                if body is None:
                    return
                if match is None:
                    write_answer(self, Answer(404, b'{"error":"not found"}'))
                    return
                try:
                    fault = FaultSpec.from_json(json.loads(body))
                except (ValueError, TypeError) as error:
                    write_answer(self, Answer(400, json.dumps({"error": str(error)}).encode()))
                    return
                runtime.set_fault(match.group(1), fault)
                write_answer(self, Answer(200, json.dumps(asdict(fault)).encode()))

            def do_GET(self) -> None:
                if self.path != "/_local/faults":
                    write_answer(self, Answer(404, b'{"error":"not found"}'))
                    return
                faults = {name: asdict(active.spec) for name, active in list(runtime._faults.items())}
                in_flight = {name: runtime.in_flight(name) for name in runtime.endpoints}
                write_answer(self, Answer(200, json.dumps({"faults": faults, "in_flight": in_flight}).encode()))

            def do_DELETE(self) -> None:
                if self.path != "/_local/faults":
                    write_answer(self, Answer(404, b'{"error":"not found"}'))
                    return
                runtime.clear_faults()
                write_answer(self, Answer(204, b""))

            def log_message(self, format: str, *args: Any) -> None:
                return

        return RuntimeHandler


def _split_s3_uri(uri: str) -> tuple[str, str]:
    match = S3_URI.match(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return match.group(1), match.group(2)


def _bounded(headers: Any, header: str, name: str, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    raw = headers.get(header)
    if raw is None:
        return default
    if not str(raw).isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} {raw!r} must be a whole number from {low} to {high}.")
    return int(raw)


def _timestamp(moment: datetime) -> str:
    """SageMaker's notification time format: ISO 8601, milliseconds, ``Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
