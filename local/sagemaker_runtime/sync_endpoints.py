"""The serverless endpoints: ``InvokeEndpoint`` as SageMaker answers it, the payload limit refused before any
container runs, injected faults (cold starts, throttling above ``max_concurrency``, latency, errors) first, then
an injected ``answer`` in place of the model's.
With a ``containers`` fault the calls run on the endpoint's warm pool (:mod:`.containers`)."""

from __future__ import annotations

import collections
import threading
import time
from typing import TYPE_CHECKING

from functions.config.limits import SERVERLESS_MAX_BODY_BYTES
from local.sagemaker_runtime.errors import Reply, endpoint_not_found, error_answer, injected_error, model_error
from serving.service import Answer

if TYPE_CHECKING:
    from local.sagemaker_runtime.faults import ActiveFault, FaultInjector
    from serving.service import InvocationService


class SyncEndpoints:
    """``endpoints`` (name → serving code), their calls in flight and the calls that reached each one."""

    def __init__(self, endpoints: dict[str, InvocationService], faults: FaultInjector) -> None:
        self.endpoints = endpoints
        self._faults = faults
        # Calls in flight per endpoint, and when the last one left (for max_concurrency and scale to zero);
        # tracked whether or not a fault is set, so a throttle set mid-load sees the load already there.
        self._in_flight: collections.Counter[str] = collections.Counter()
        self._idle_since: dict[str, float] = {}
        self._flight_lock = threading.Lock()
        # Invocations that reached each endpoint (retries included): what resilience tests count.
        self.invocations: collections.Counter[str] = collections.Counter()

    def in_flight(self, endpoint: str) -> int:
        with self._flight_lock:
            return self._in_flight[endpoint]

    def invoke(self, endpoint: str, body: bytes, custom_attributes: str | None = None) -> Reply | None:
        """One invocation as SageMaker answers it; None means: drop the connection. ``custom_attributes``
        reach the container as SageMaker passes them (``X-Amzn-SageMaker-Custom-Attributes``)."""
        service = self.endpoints.get(endpoint)
        if service is None:
            return endpoint_not_found(endpoint)
        if len(body) > SERVERLESS_MAX_BODY_BYTES:
            # SageMaker refuses a payload over the serverless limit before any container sees it.
            return error_answer(
                "ValidationError",
                f"Request payload is oversize: {len(body)} bytes; endpoint {endpoint} accepts at most "
                f"{SERVERLESS_MAX_BODY_BYTES} bytes.",
            )
        with self._flight_lock:
            self.invocations[endpoint] += 1
            self._in_flight[endpoint] += 1
            in_flight = self._in_flight[endpoint]
            idle_since = self._idle_since.pop(endpoint, None) if in_flight == 1 else None
        active = self._faults.active(endpoint)
        pool = active.pool if active is not None else None
        container = pool.acquire(self._faults.clock()) if pool is not None else None
        try:
            if active is not None and pool is not None and container is None:
                return injected_error(endpoint, "ThrottlingException", active.spec.model_status)
            if container is not None and container.cold and active is not None:
                time.sleep(active.spec.cold_start_s)  # the call waits while its container starts
            code = self._fault_code(active, in_flight, idle_since) if active is not None else None
            if active is not None and code is not None:
                return injected_error(endpoint, code, active.spec.model_status)
            injected = active.spec.answer_bytes if active is not None else None
            if injected is not None:
                return Answer(200, injected), {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
            answer = service.invoke(body, custom_attributes=custom_attributes)
            if answer.status >= 400:
                return model_error(endpoint, answer.status, answer.body.decode("utf-8", "replace"))
            return answer, {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        finally:
            if pool is not None and container is not None:
                pool.release(container, self._faults.clock())
            with self._flight_lock:
                self._in_flight[endpoint] -= 1
                if self._in_flight[endpoint] == 0:
                    self._idle_since[endpoint] = self._faults.clock()

    def _fault_code(self, active: ActiveFault, in_flight: int, idle_since: float | None) -> str | None:
        """The error code one call is answered with (after the injected latency), or None: answer normally."""
        fault = active.spec
        # Refusals come first and fast, as SageMaker's front end answers them before any container runs.
        if active.is_cold(self._faults.clock(), idle_since):
            return "ModelNotReadyException"
        if active.pool is None and fault.max_concurrency is not None and in_flight > fault.max_concurrency:
            return "ThrottlingException"
        latency_ms = active.draw_latency_ms()
        if latency_ms:
            time.sleep(latency_ms / 1000)
        return self._faults.draw_error(active)
