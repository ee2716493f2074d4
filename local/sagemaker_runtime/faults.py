"""The fault model of the local SageMaker runtime: what an endpoint does wrong (:class:`FaultSpec`), how each
spec runs on its endpoint (:class:`ActiveFault`), and the :class:`FaultInjector` the sync endpoints and the
async worker both ask, so faults reach them through one seam and a seeded runtime replays its draws.
"""

from __future__ import annotations

import json
import math
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from local.sagemaker_runtime.containers import ContainerPool, ContainerSpec, ContainerSpecError
from local.sagemaker_runtime.errors import DROP_CONNECTION, ERROR_STATUS


class FaultSpecError(ValueError):
    """A fault spec names an unknown error or an impossible rate."""


# z of the 99th percentile of a standard normal: a lognormal's p99 is median * exp(2.326 * sigma).
Z_P99: Final[float] = 2.3263478740408408
LATENCY_FIELDS: Final[dict[str, frozenset[str]]] = {
    "fixed": frozenset({"ms"}),
    "uniform": frozenset({"min_ms", "max_ms"}),
    "lognormal": frozenset({"median_ms", "p99_ms", "max_ms"}),
    "sequence": frozenset({"values_ms"}),
}


@dataclass(frozen=True, slots=True)
class LatencySpec:
    """How long the endpoint takes before it answers, drawn per call: ``fixed`` (``ms``), ``uniform``
    (``min_ms``..``max_ms``) or ``lognormal`` (``median_ms`` and ``p99_ms``, optionally capped at ``max_ms``),
    the long-tailed shape real model latencies take; or ``sequence``: the n-th call on the endpoint takes the
    n-th of ``values_ms`` (cycling), to replay a recorded trace's latencies."""

    distribution: str = "fixed"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float | None = None
    median_ms: float = 0.0
    p99_ms: float = 0.0
    values_ms: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.distribution not in LATENCY_FIELDS:
            raise FaultSpecError(f"latency distribution {self.distribution!r} is not one of {sorted(LATENCY_FIELDS)}")
        if min(self.ms, self.min_ms, self.median_ms, self.p99_ms, self.max_ms or 0.0) < 0:
            raise FaultSpecError("latencies must not be negative")
        if self.distribution == "uniform" and (self.max_ms is None or self.max_ms < self.min_ms):
            raise FaultSpecError("a uniform latency needs max_ms >= min_ms")
        if self.distribution == "lognormal" and not 0 < self.median_ms <= self.p99_ms:
            raise FaultSpecError("a lognormal latency needs 0 < median_ms <= p99_ms")
        if self.distribution == "sequence" and (
            not self.values_ms
            or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in self.values_ms)
        ):
            raise FaultSpecError("a sequence latency needs values_ms: a non-empty list of milliseconds, none negative")

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
        fields = dict(document)
        if "values_ms" in fields:
            if not isinstance(fields["values_ms"], list):
                raise FaultSpecError("values_ms is a list of milliseconds")
            fields["values_ms"] = tuple(fields["values_ms"])
        return cls(**fields)

    def draw_ms(self, rng: random.Random, call_index: int = 0) -> float:
        """One call's latency; ``call_index`` (the call's position on the endpoint) picks a sequence's value."""
        if self.distribution == "sequence":
            return self.values_ms[call_index % len(self.values_ms)]
        if self.distribution == "fixed":
            return self.ms
        if self.distribution == "uniform":
            return rng.uniform(self.min_ms, self.max_ms if self.max_ms is not None else self.min_ms)
        sigma = math.log(self.p99_ms / self.median_ms) / Z_P99
        drawn = rng.lognormvariate(math.log(self.median_ms), sigma)
        return min(drawn, self.max_ms) if self.max_ms is not None else drawn


# DescribeEndpoint's EndpointStatus values (SageMaker API reference) and the errors the fault may inject.
ENDPOINT_STATUSES: Final[tuple[str, ...]] = (
    "OutOfService", "Creating", "Updating", "SystemUpdating", "RollingBack", "InService", "Deleting", "Failed",
    "UpdateRollbackFailed",
)  # fmt: skip
DESCRIBE_ERRORS: Final[dict[str, int]] = {"ThrottlingException": 400, "AccessDeniedException": 400}
FAULT_FIELDS: Final[frozenset[str]] = frozenset(
    {"error", "error_rate", "errors", "latency_ms", "latency", "model_status", "drop_notification_rate",
     "cold_start_s", "scale_to_zero_after_s", "max_concurrency", "containers", "seed", "endpoint_status",
     "describe_error", "answer", "answer_body"}
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
    - ``containers`` (a :class:`ContainerSpec`, e.g. ``{"keep_warm_s": 600, "provisioned": 0}``) replaces the
      endpoint-wide cold-start window with per-container warm pooling (:mod:`.containers`): a call that has
      to start a container waits ``cold_start_s`` and is then answered, a call finding ``max_concurrency``
      containers all busy is throttled, and the endpoint counts its cold starts and throttles.
    - ``endpoint_status``: what ``DescribeEndpoint`` reports for the endpoint (``InService`` when unset), e.g.
      ``Creating`` or ``Failed``; ``describe_error`` makes ``DescribeEndpoint`` itself fail with that code
      (``ThrottlingException``, ``AccessDeniedException``). Neither changes how invocations answer.
    - ``answer``: the endpoint answers this OIP response object (200, JSON) instead of running its model,
      e.g. ``{"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [1.7, 0, 0]}]}``;
      ``answer_body`` answers this text as it is instead (not both), for what standard JSON cannot carry: a
      ``NaN``, a truncated or non-JSON body. A call that draws an injected error still fails with it; on an
      async endpoint the worker writes the answer as the job's output object.
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
    containers: ContainerSpec | None = None
    seed: int | None = None
    endpoint_status: str | None = None
    describe_error: str | None = None
    answer: dict[str, Any] | None = None
    answer_body: str | None = None

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
        if self.containers is not None and self.scale_to_zero_after_s is not None:
            raise FaultSpecError("containers retire after their own keep_warm_s: drop scale_to_zero_after_s")
        if (
            self.containers is not None
            and self.max_concurrency is not None
            and self.containers.provisioned > self.max_concurrency
        ):
            raise FaultSpecError(
                f"containers.provisioned {self.containers.provisioned} exceeds max_concurrency {self.max_concurrency}"
            )
        if self.endpoint_status is not None and self.endpoint_status not in ENDPOINT_STATUSES:
            raise FaultSpecError(f"endpoint_status {self.endpoint_status!r} is not a SageMaker endpoint status")
        if self.describe_error is not None and self.describe_error not in DESCRIBE_ERRORS:
            raise FaultSpecError(f"describe_error {self.describe_error!r} is not one of {', '.join(DESCRIBE_ERRORS)}")
        self._check_answer()

    def _check_answer(self) -> None:
        if self.answer is not None and self.answer_body is not None:
            raise FaultSpecError("give answer (an OIP response object) or answer_body (text), not both")
        if self.answer is not None:
            if not isinstance(self.answer, dict):
                raise FaultSpecError(f'answer is an OIP response object like {{"outputs": [...]}}, not {self.answer!r}')
            try:
                json.dumps(self.answer)
            except (TypeError, ValueError) as error:
                raise FaultSpecError(f"answer must be JSON: {error}") from None
        if self.answer_body is not None and not isinstance(self.answer_body, str):
            raise FaultSpecError(f"answer_body is the answer's text, not {self.answer_body!r}")

    @property
    def answer_bytes(self) -> bytes | None:
        """The body an ``answer`` or ``answer_body`` fault answers with; None: the model answers."""
        if self.answer is not None:
            return json.dumps(self.answer).encode()
        return self.answer_body.encode() if self.answer_body is not None else None

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
        if fields.get("containers") is not None:
            try:
                fields["containers"] = ContainerSpec.from_json(fields["containers"])
            except ContainerSpecError as error:
                raise FaultSpecError(str(error)) from error
        return cls(**fields)

    @property
    def uses_random_draws(self) -> bool:
        return bool(self.errors) or (
            self.latency is not None and self.latency.distribution not in {"fixed", "sequence"}
        )


class ActiveFault:
    """A spec as it runs on one endpoint: its own generator and its cold-start window, or its containers."""

    def __init__(self, spec: FaultSpec, rng: random.Random, now: float) -> None:
        self.spec = spec
        self.rng = rng
        self.lock = threading.Lock()
        self.set_at = now
        self.pool = ContainerPool(spec.containers, spec.max_concurrency) if spec.containers is not None else None
        # With containers, cold starts are per container (the pool's), not an endpoint-wide window.
        self.cold_until = now + spec.cold_start_s if self.pool is None else now
        self._latency_calls = 0

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
            self._latency_calls += 1
            return self.spec.latency.draw_ms(self.rng, self._latency_calls - 1)


class FaultInjector:
    """The faults set per endpoint and the runtime's own generator, which seeds specs without a ``seed`` and
    draws the single-error and notification decisions."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._active: dict[str, ActiveFault] = {}
        self._random = random.Random()
        self._random_lock = threading.Lock()

    def set(self, endpoint: str, fault: FaultSpec) -> None:
        """Make ``endpoint`` misbehave from now on (replacing its previous fault); a cold-start window opens now."""
        if fault.seed is not None:
            rng = random.Random(fault.seed)
        elif fault.uses_random_draws:
            with self._random_lock:
                rng = random.Random(self._random.getrandbits(64))
        else:
            # No draw from the runtime's generator: specs without random draws replay exactly.
            rng = random.Random(0)
        self._active[endpoint] = ActiveFault(fault, rng, self.clock())

    def active(self, endpoint: str) -> ActiveFault | None:
        return self._active.get(endpoint)

    def active_or_healthy(self, endpoint: str) -> ActiveFault:
        """The endpoint's fault, or a healthy spec that draws nothing when none is set."""
        return self._active.get(endpoint) or ActiveFault(FaultSpec(), random.Random(0), self.clock())

    def container_stats(self) -> dict[str, dict[str, int]]:
        """Per endpoint whose fault has containers: the pool's size and its cold starts and throttles so far."""
        now = self.clock()
        return {name: active.pool.stats(now) for name, active in list(self._active.items()) if active.pool is not None}

    def specs(self) -> dict[str, FaultSpec]:
        return {name: active.spec for name, active in list(self._active.items())}

    def clear(self) -> None:
        self._active.clear()

    def seed(self, value: int) -> None:
        with self._random_lock:
            self._random.seed(value)

    def chance(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._random_lock:  # one draw per decision, in submit order, so a seed replays a run
            return self._random.random() < rate

    def draw_error(self, active: ActiveFault) -> str | None:
        """The error code one call fails with, or None. The single ``error`` draws from the runtime's
        generator, so a seeded runtime replays the same failures of such specs; ``errors`` from the spec's."""
        fault = active.spec
        if fault.error is not None and self.chance(fault.error_rate):
            return fault.error
        return active.draw_error()
