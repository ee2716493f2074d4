"""Model and server readiness: what the router knows of a model's route, at no cost to infer.

A model is ready when the route a plain infer request takes can answer it now:

- sync ``serverless`` (whether or not the model also has an async route): the endpoint's status, from
  SageMaker's control plane, is one that takes invocations and its circuit in this environment is not open;
- async-only: the async path is configured here and the async endpoint's status takes invocations;
- sync ``lambda``: its session is loaded, or its artifact is there to load.

A fallback (static, last good) or a spill to async does not make a model ready: they answer for a model
whose endpoint is down, marked degraded, and a client waiting for ``ready`` is waiting for the model itself.
The server is ready when every model is (the Open Inference Protocol's definition of server readiness).

The endpoint status is cached per environment for :data:`STATUS_TTL_S`; when the control plane cannot say
(throttled, access denied, unreachable) the last status it gave stands, and with none yet the circuit alone
decides: the failure never turns into a crash, nor into a status SageMaker never reported.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, Protocol

from functions.domain.breaker import BreakerRegistry, BreakerState

if TYPE_CHECKING:
    from functions.config.model_types import ModelConfig, ModelsConfig

# DescribeEndpoint's EndpointStatus values under which the endpoint takes invocations (SageMaker API
# reference, DescribeEndpoint): an update, system maintenance or a rollback keeps the running variants
# serving, and UpdateRollbackFailed is "in service with a mix of the old and new endpoint configurations".
# OutOfService, Creating, Deleting and Failed do not; a status not listed here counts as not serving.
SERVING_STATUSES: Final[frozenset[str]] = frozenset(
    {"InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}
)
# What the adapter reports for an endpoint SageMaker does not know (not deployed yet, or deleted).
MISSING: Final[str] = "NotFound"
# How long one DescribeEndpoint answer stands. DescribeEndpoint is a control-plane call, rate-limited per
# account and shared with deploy tooling; readiness probes from many clients collapse to one call per
# endpoint per 30 s per environment. An endpoint changes status over minutes (a serverless endpoint takes a
# few to create), so an answer at most 30 s old is still the endpoint's status; the circuit, read live,
# catches a failing endpoint sooner.
STATUS_TTL_S: Final[float] = 30.0


class StatusUnavailableError(Exception):
    """The control plane could not give an endpoint's status (throttled, denied, unreachable, timed out)."""


class EndpointStatusPort(Protocol):
    def status(self, endpoint: str) -> str:
        """The endpoint's EndpointStatus, or :data:`MISSING`; raises StatusUnavailableError."""
        ...


class InLambdaModels(Protocol):
    def loadable(self, model: ModelConfig) -> bool:
        """Whether the model's session is loaded, or its artifact is there to load."""
        ...


# endpoint, the error the control plane answered: told once per failed lookup (the caller logs it).
StatusFailure = Callable[[str, StatusUnavailableError], None]


@dataclass
class EndpointStatusCache:
    """Each endpoint's status, asked for at most once per ``ttl_s``; a failed lookup keeps the last status
    (or None: never known) and is not retried before ``ttl_s`` either, so a throttled control plane is not
    asked again by every probe."""

    port: Callable[[], EndpointStatusPort]  # built on first use: an environment that never probes never pays
    ttl_s: float = STATUS_TTL_S
    clock: Callable[[], float] = time.monotonic
    on_failure: StatusFailure | None = None
    _entries: dict[str, tuple[float, str | None]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self, endpoint: str) -> str | None:
        now = self.clock()
        with self._lock:
            entry = self._entries.get(endpoint)
        if entry is not None and now - entry[0] < self.ttl_s:
            return entry[1]
        known = entry[1] if entry is not None else None
        try:
            status: str | None = self.port().status(endpoint)
        except StatusUnavailableError as error:
            if self.on_failure is not None:
                self.on_failure(endpoint, error)
            status = known
        with self._lock:
            self._entries[endpoint] = (now, status)
        return status


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str  # why, for the log: "endpoint 'dev-iris' is Creating", "circuit open", "ready"


READY: Final[Readiness] = Readiness(True, "ready")


@dataclass(frozen=True)
class ReadinessCheck:
    """Example:
    >>> check = ReadinessCheck(config, "dev-", breakers, EndpointStatusCache(SageMakerEndpointStatus))
    >>> check.model(config.by_name["iris"])
    Readiness(ready=False, reason="endpoint 'dev-iris' is Creating")
    """

    config: ModelsConfig
    endpoint_name_prefix: str
    breakers: BreakerRegistry
    statuses: EndpointStatusCache
    async_configured: bool = False
    in_lambda: InLambdaModels | None = None

    def model(self, model: ModelConfig) -> Readiness:
        route = model.route
        if route.sync == "lambda":
            if self.in_lambda is not None and self.in_lambda.loadable(model):
                return READY
            return Readiness(False, f"model {model.name!r} runs in the router and its artifact is not there")
        if route.sync == "serverless" and route.serverless_endpoint is not None:
            endpoint = self.endpoint_name_prefix + route.serverless_endpoint
            if self.breakers.state_of(endpoint) is BreakerState.OPEN:
                return Readiness(False, f"endpoint {endpoint!r} is failing: its circuit is open")
            return self._endpoint(endpoint)
        if route.sync is None and route.async_endpoint is not None:
            if not self.async_configured:
                return Readiness(False, f"model {model.name!r} is async-only and the async path is not configured")
            return self._endpoint(self.endpoint_name_prefix + route.async_endpoint)
        return Readiness(False, f"model {model.name!r} has no route configured")

    def server(self) -> Readiness:
        """Ready when every model is; else the first model that is not, and why."""
        for model in self.config.models:
            readiness = self.model(model)
            if not readiness.ready:
                return readiness
        return READY

    def _endpoint(self, endpoint: str) -> Readiness:
        status = self.statuses.status(endpoint)
        if status is None or status in SERVING_STATUSES:
            # None: the control plane has not answered yet; the circuit (not open) is what is known.
            return READY
        if status == MISSING:
            return Readiness(False, f"endpoint {endpoint!r} does not exist")
        return Readiness(False, f"endpoint {endpoint!r} is {status}")
