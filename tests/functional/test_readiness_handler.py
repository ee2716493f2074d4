"""Readiness through the router handler, with the endpoint's status read by the real DescribeEndpoint adapter
from the local runtime's control plane (faults set ``endpoint_status`` / ``describe_error``), and the circuit
opened by real failing invocations."""

from __future__ import annotations

from typing import Any

import pytest

from functions.adapters.endpoint_status import SageMakerEndpointStatus
from functions.adapters.sagemaker import SageMakerBackend
from functions.config.router_settings import RouterSettings
from functions.domain.readiness import MISSING, STATUS_TTL_S, StatusUnavailableError
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from tests.helpers.events import HandlerAnswer, answer_of

INFER_BODY = b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}'


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingStatus:
    """The real adapter, each DescribeEndpoint counted."""

    def __init__(self) -> None:
        self.adapter = SageMakerEndpointStatus()
        self.calls = 0

    def status(self, endpoint: str) -> str:
        self.calls += 1
        return self.adapter.status(endpoint)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def statuses() -> CountingStatus:
    return CountingStatus()


@pytest.fixture
def app(sagemaker_backend: SageMakerBackend, clock: FakeClock, statuses: CountingStatus) -> RouterApp:
    clients = RouterClients(sagemaker_backend, clock=clock, sleep=lambda _: None, endpoint_status=lambda: statuses)
    return create_app(RouterSettings(), None, clients)


def call(app: RouterApp, method: str, path: str, body: bytes = b"") -> HandlerAnswer:
    event = build_rest_event(method, path, {"Content-Type": "application/json"} if body else {}, body)
    assert event is not None
    return answer_of(app(event, LocalLambdaContext()))


def ready(app: RouterApp) -> tuple[int, Any]:
    answer = call(app, "GET", "/v2/models/iris/ready")
    return answer.status, answer.body


def test_in_service_endpoint_is_ready(app: RouterApp, runtime: LocalSageMakerRuntime) -> None:
    assert ready(app) == (200, {"name": "iris", "ready": True})
    assert call(app, "GET", "/v2/health/ready").body == {"ready": True}


def test_creating_endpoint_is_not_ready_then_ready_once_in_service(
    app: RouterApp, runtime: LocalSageMakerRuntime, clock: FakeClock
) -> None:
    runtime.set_fault("iris", FaultSpec(endpoint_status="Creating"))
    assert ready(app) == (400, {"name": "iris", "ready": False})
    server = call(app, "GET", "/v2/health/ready")
    assert (server.status, server.body) == (400, {"ready": False})
    runtime.clear_faults()
    clock.now += STATUS_TTL_S
    assert ready(app) == (200, {"name": "iris", "ready": True})


def test_open_circuit_is_not_ready_and_recovered_is_ready(
    app: RouterApp, runtime: LocalSageMakerRuntime, clock: FakeClock
) -> None:
    runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable"))
    answers = [call(app, "POST", "/v2/models/iris/infer", INFER_BODY) for _ in range(3)]  # 3 attempts each
    assert answers[-1].status == 503
    assert "circuit open" in answers[-1].body["error"]
    assert ready(app) == (400, {"name": "iris", "ready": False})
    runtime.clear_faults()
    clock.now += 10  # the default cooldown: half-open, the next call goes through as the probe
    assert ready(app) == (200, {"name": "iris", "ready": True})
    assert call(app, "POST", "/v2/models/iris/infer", INFER_BODY).status == 200  # the probe closes it
    assert ready(app)[0] == 200


def test_two_ready_calls_within_the_ttl_make_one_describe_call(
    app: RouterApp, runtime: LocalSageMakerRuntime, clock: FakeClock, statuses: CountingStatus
) -> None:
    ready(app)
    clock.now += STATUS_TTL_S / 2
    ready(app)
    assert statuses.calls == 1
    clock.now += STATUS_TTL_S
    ready(app)
    assert statuses.calls == 2


def test_infer_never_describes(app: RouterApp, runtime: LocalSageMakerRuntime, statuses: CountingStatus) -> None:
    assert call(app, "POST", "/v2/models/iris/infer", INFER_BODY).status == 200
    assert statuses.calls == 0


def test_throttled_describe_with_nothing_known_leaves_the_circuit_to_decide(
    app: RouterApp, runtime: LocalSageMakerRuntime
) -> None:
    runtime.set_fault("iris", FaultSpec(describe_error="ThrottlingException"))
    assert ready(app) == (200, {"name": "iris", "ready": True})


def test_throttled_describe_keeps_the_last_known_status(
    app: RouterApp, runtime: LocalSageMakerRuntime, clock: FakeClock
) -> None:
    runtime.set_fault("iris", FaultSpec(endpoint_status="Failed"))
    assert ready(app)[0] == 400
    clock.now += STATUS_TTL_S
    runtime.set_fault("iris", FaultSpec(describe_error="ThrottlingException"))
    assert ready(app) == (400, {"name": "iris", "ready": False})


def test_unknown_model_ready_is_404(app: RouterApp, runtime: LocalSageMakerRuntime) -> None:
    answer = call(app, "GET", "/v2/models/nope/ready")
    assert answer.status == 404
    assert "nope" in answer.body["error"]


def test_adapter_reads_status_missing_and_failures(runtime: LocalSageMakerRuntime) -> None:
    adapter = SageMakerEndpointStatus()
    assert adapter.status("iris") == "InService"
    runtime.set_fault("iris", FaultSpec(endpoint_status="Updating"))
    assert adapter.status("iris") == "Updating"
    assert adapter.status("not-deployed") == MISSING
    runtime.set_fault("iris", FaultSpec(describe_error="AccessDeniedException"))
    with pytest.raises(StatusUnavailableError, match="AccessDeniedException"):
        adapter.status("iris")


def test_adapter_unreachable_control_plane_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", "http://127.0.0.1:9")  # discard port: refused
    with pytest.raises(StatusUnavailableError, match="EndpointConnectionError"):
        SageMakerEndpointStatus().status("iris")
