"""Readiness rules (functions/domain/readiness.py): the route a plain infer takes, its endpoint's status and
circuit, the status cache and what a failed DescribeEndpoint leaves standing."""

from __future__ import annotations

import pytest

from functions.config.model_types import (
    LimitsConfig,
    ModelConfig,
    ModelsConfig,
    ResilienceConfig,
    RouteConfig,
    ServerInfo,
    TensorSpec,
)
from functions.domain.breaker import BreakerRegistry, BreakerSettings, BreakerState
from functions.domain.readiness import (
    MISSING,
    STATUS_TTL_S,
    EndpointStatusCache,
    Readiness,
    ReadinessCheck,
    StatusUnavailableError,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Statuses:
    """The control plane: a status per endpoint (absent: InService), or an error; every call counted."""

    def __init__(self, **statuses: str) -> None:
        self.statuses = statuses
        self.calls: list[str] = []
        self.failing: StatusUnavailableError | None = None

    def status(self, endpoint: str) -> str:
        self.calls.append(endpoint)
        if self.failing is not None:
            raise self.failing
        return self.statuses.get(endpoint, "InService")


class Artifacts:
    def __init__(self, present: bool) -> None:
        self.present = present

    def loadable(self, model: ModelConfig) -> bool:
        return self.present


def model(name: str, route: RouteConfig, resilience: ResilienceConfig | None = None) -> ModelConfig:
    return ModelConfig(
        name=name,
        version="1",
        platform="onnxruntime_onnx",
        artifact=f"layers/models/{name}/model.onnx",
        inputs=(TensorSpec("input", "FP32", (-1, 4)),),
        outputs=(TensorSpec("label", "INT64", (-1,)),),
        route=route,
        limits=LimitsConfig(max_body_bytes=1 << 20, max_batch_rows=1000),
        resilience=resilience or ResilienceConfig(),
    )


SERVERLESS = model("iris", RouteConfig("serverless", "iris", None))
BOTH = model("both", RouteConfig("serverless", "both", "both-async"))
ASYNC_ONLY = model("batch", RouteConfig(None, None, "batch-async"))
IN_LAMBDA = model("tiny", RouteConfig("lambda", None, None))
STATIC = model("static", RouteConfig("serverless", "static", None), ResilienceConfig(fallback="static",
               static_response={"outputs": []}))  # fmt: skip
LAST_GOOD = model("cached", RouteConfig("serverless", "cached", None), ResilienceConfig(fallback="last_good"))
CONFIG = ModelsConfig("test", ServerInfo("router", "1"), (SERVERLESS, BOTH, ASYNC_ONLY, IN_LAMBDA, STATIC, LAST_GOOD))


def check(
    statuses: Statuses,
    *,
    breakers: BreakerRegistry | None = None,
    async_configured: bool = True,
    artifacts: bool = True,
    clock: FakeClock | None = None,
) -> ReadinessCheck:
    cache = EndpointStatusCache(lambda: statuses, clock=clock or FakeClock())
    return ReadinessCheck(CONFIG, "dev-", breakers or BreakerRegistry(), cache, async_configured, Artifacts(artifacts))


def open_circuit(registry: BreakerRegistry, endpoint: str) -> None:
    breaker = registry.for_endpoint(endpoint, BreakerSettings(failure_threshold=1))
    breaker.record_failure()
    assert registry.state_of(endpoint) is BreakerState.OPEN


@pytest.mark.parametrize(
    ("subject", "statuses", "ready"),
    [
        (SERVERLESS, {}, True),
        (SERVERLESS, {"dev-iris": "Creating"}, False),
        (SERVERLESS, {"dev-iris": "Failed"}, False),
        (SERVERLESS, {"dev-iris": "OutOfService"}, False),
        (SERVERLESS, {"dev-iris": "Deleting"}, False),
        (SERVERLESS, {"dev-iris": MISSING}, False),
        (SERVERLESS, {"dev-iris": "SomeStatusSageMakerAddsLater"}, False),
        (SERVERLESS, {"dev-iris": "Updating"}, True),  # the running variant keeps serving
        (SERVERLESS, {"dev-iris": "SystemUpdating"}, True),
        (SERVERLESS, {"dev-iris": "RollingBack"}, True),
        (SERVERLESS, {"dev-iris": "UpdateRollbackFailed"}, True),
        # A fallback answers for a model whose endpoint is down; it does not make the model ready.
        (STATIC, {"dev-static": "Creating"}, False),
        (LAST_GOOD, {"dev-cached": "Failed"}, False),
        # Both routes: the sync route decides, the async endpoint is not asked.
        (BOTH, {"dev-both-async": "Creating"}, True),
        (BOTH, {"dev-both": "Creating"}, False),
        (ASYNC_ONLY, {}, True),
        (ASYNC_ONLY, {"dev-batch-async": "Creating"}, False),
    ],
)
def test_endpoint_status_rules(subject: ModelConfig, statuses: dict[str, str], ready: bool) -> None:
    assert check(Statuses(**statuses)).model(subject).ready is ready


def test_the_reason_names_the_endpoint_and_its_status() -> None:
    assert check(Statuses(**{"dev-iris": "Creating"})).model(SERVERLESS) == Readiness(
        False, "endpoint 'dev-iris' is Creating"
    )
    assert check(Statuses(**{"dev-iris": MISSING})).model(SERVERLESS).reason == "endpoint 'dev-iris' does not exist"


def test_open_circuit_is_not_ready_and_skips_the_status_call() -> None:
    registry, statuses = BreakerRegistry(), Statuses()
    open_circuit(registry, "dev-iris")
    readiness = check(statuses, breakers=registry).model(SERVERLESS)
    assert readiness == Readiness(False, "endpoint 'dev-iris' is failing: its circuit is open")
    assert statuses.calls == []


def test_circuit_after_its_cooldown_reads_ready_again() -> None:
    clock = FakeClock()
    registry = BreakerRegistry(clock=clock)
    registry.for_endpoint("dev-iris", BreakerSettings(failure_threshold=1, cooldown_s=10)).record_failure()
    subject = check(Statuses(), breakers=registry, clock=clock)
    assert not subject.model(SERVERLESS).ready
    clock.now += 10  # half-open: the next call goes through as the probe
    assert subject.model(SERVERLESS).ready


def test_state_of_creates_no_breaker() -> None:
    registry = BreakerRegistry()
    assert registry.state_of("dev-iris") is BreakerState.CLOSED
    assert registry._breakers == {}


def test_async_only_model_needs_the_async_path_configured() -> None:
    statuses = Statuses()
    assert not check(statuses, async_configured=False).model(ASYNC_ONLY).ready
    assert statuses.calls == []


@pytest.mark.parametrize("present", [True, False])
def test_in_lambda_model_is_ready_when_loadable(present: bool) -> None:
    statuses = Statuses()
    assert check(statuses, artifacts=present).model(IN_LAMBDA).ready is present
    assert statuses.calls == []


def test_model_without_a_route_is_not_ready() -> None:
    nothing = model("none", RouteConfig(None, None, None))
    assert not check(Statuses()).model(nothing).ready


def test_server_is_ready_when_every_model_is() -> None:
    assert check(Statuses()).server().ready
    not_ready = check(Statuses(**{"dev-batch-async": "Failed"})).server()
    assert not_ready == Readiness(False, "endpoint 'dev-batch-async' is Failed")


def test_server_stops_at_the_first_model_not_ready() -> None:
    statuses = Statuses(**{"dev-iris": "Creating"})
    assert not check(statuses).server().ready
    assert statuses.calls == ["dev-iris"]


def test_status_is_asked_once_per_ttl() -> None:
    clock, statuses = FakeClock(), Statuses()
    subject = check(statuses, clock=clock)
    subject.model(SERVERLESS)
    clock.now += STATUS_TTL_S - 0.001
    subject.model(SERVERLESS)
    assert statuses.calls == ["dev-iris"]
    clock.now += 0.001
    subject.model(SERVERLESS)
    assert statuses.calls == ["dev-iris", "dev-iris"]


def test_recovered_endpoint_reads_ready_after_the_ttl() -> None:
    clock, statuses = FakeClock(), Statuses(**{"dev-iris": "Creating"})
    subject = check(statuses, clock=clock)
    assert not subject.model(SERVERLESS).ready
    statuses.statuses["dev-iris"] = "InService"
    assert not subject.model(SERVERLESS).ready  # cached
    clock.now += STATUS_TTL_S
    assert subject.model(SERVERLESS).ready


def test_failed_lookup_keeps_the_last_known_status_and_waits_a_ttl() -> None:
    clock, statuses = FakeClock(), Statuses(**{"dev-iris": "Creating"})
    failures: list[str] = []
    cache = EndpointStatusCache(lambda: statuses, clock=clock, on_failure=lambda endpoint, _: failures.append(endpoint))
    assert cache.status("dev-iris") == "Creating"
    clock.now += STATUS_TTL_S
    statuses.failing = StatusUnavailableError("DescribeEndpoint 'dev-iris' failed: ThrottlingException")
    assert cache.status("dev-iris") == "Creating"
    assert failures == ["dev-iris"]
    clock.now += 1
    assert cache.status("dev-iris") == "Creating"
    assert len(statuses.calls) == 2  # the failure is not retried before the TTL either


def test_failed_lookup_with_nothing_known_leaves_the_circuit_to_decide() -> None:
    statuses, registry = Statuses(), BreakerRegistry()
    statuses.failing = StatusUnavailableError("DescribeEndpoint 'dev-iris' failed: AccessDeniedException")
    assert check(statuses, breakers=registry).model(SERVERLESS).ready
    open_circuit(registry, "dev-iris")
    assert not check(statuses, breakers=registry).model(SERVERLESS).ready


def test_the_port_is_built_on_first_use_only() -> None:
    built: list[int] = []

    def port() -> Statuses:
        built.append(1)
        return Statuses()

    cache = EndpointStatusCache(port, clock=FakeClock())
    assert built == []
    check_ = ReadinessCheck(CONFIG, "dev-", BreakerRegistry(), cache, True, Artifacts(True))
    check_.model(IN_LAMBDA)
    assert built == []
    check_.model(SERVERLESS)
    assert built == [1]


def test_prefix_is_part_of_the_endpoint_name() -> None:
    statuses = Statuses()
    cache = EndpointStatusCache(lambda: statuses, clock=FakeClock())
    ReadinessCheck(CONFIG, "prod-", BreakerRegistry(), cache).model(SERVERLESS)
    assert statuses.calls == ["prod-iris"]
