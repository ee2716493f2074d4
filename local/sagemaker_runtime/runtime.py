"""The local SageMaker runtime as one server: the sync and async endpoints, the faults they share, and the
HTTP server speaking the sagemaker-runtime protocol in front of them."""

from __future__ import annotations

import threading
import time
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING

from local.aws import aws_client
from local.sagemaker_runtime.async_worker import AsyncEndpoints, AsyncEndpointSpec, AsyncStats
from local.sagemaker_runtime.faults import FaultInjector
from local.sagemaker_runtime.http_server import runtime_handler
from local.sagemaker_runtime.sync_endpoints import SyncEndpoints

if TYPE_CHECKING:
    import collections
    from collections.abc import Callable

    from local.sagemaker_runtime.faults import FaultSpec
    from serving.service import InvocationService


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
        self.faults = FaultInjector(clock)
        self.sync = SyncEndpoints(endpoints, self.faults)
        specs = dict(async_endpoints or {})
        s3 = sns = None
        if specs:
            if aws_endpoint_url is None:
                raise ValueError("async endpoints need aws_endpoint_url: where their S3 objects and SNS topics live")
            s3, sns = aws_client("s3", aws_endpoint_url), aws_client("sns", aws_endpoint_url)
        self.asynchronous = AsyncEndpoints(specs, self.faults, s3=s3, sns=sns)
        self._server = ThreadingHTTPServer((host, port), runtime_handler(self.sync, self.asynchronous, self.faults))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def async_endpoints(self) -> dict[str, AsyncEndpointSpec]:
        return self.asynchronous.specs

    @property
    def sync_invocations(self) -> collections.Counter[str]:
        """Sync invocations that reached each endpoint (retries included): what resilience tests count."""
        return self.sync.invocations

    @property
    def async_stats(self) -> AsyncStats:
        return self.asynchronous.stats

    def start(self) -> LocalSageMakerRuntime:
        self.asynchronous.start()
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
        self.asynchronous.stop()

    def wait_async_idle(self, timeout: float) -> bool:
        """Wait until every accepted async invocation has its output or failure written and its
        notification published (or dropped); False when ``timeout`` seconds pass first."""
        return self.asynchronous.wait_idle(timeout)

    def reset_async_stats(self) -> None:
        self.asynchronous.reset_stats()

    def set_fault(self, endpoint: str, fault: FaultSpec) -> None:
        """Make ``endpoint`` misbehave from now on (replacing its previous fault); a cold-start window opens now."""
        self.faults.set(endpoint, fault)

    def fault(self, endpoint: str) -> FaultSpec | None:
        active = self.faults.active(endpoint)
        return active.spec if active is not None else None

    def clear_faults(self) -> None:
        self.faults.clear()

    def in_flight(self, endpoint: str) -> int:
        return self.sync.in_flight(endpoint)

    def seed(self, value: int) -> None:
        """Seed the runtime's generator, so a run's fault draws replay."""
        self.faults.seed(value)
