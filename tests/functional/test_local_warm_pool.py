"""The local runtime's per-container warm pool (a ``containers`` fault): the container rules real serverless
endpoints follow and the capacity planner simulates, driven deterministically with a gated model and a fake
clock, read back over ``GET /_local/faults``, and its spec's validation."""

from __future__ import annotations

import json
import random
import threading
import time
import urllib.request
from typing import Any

import pytest

from functions.config.models import load_models_config
from local.sagemaker_runtime import ContainerSpec, FaultSpec, FaultSpecError, LatencySpec, LocalSageMakerRuntime
from local.sagemaker_runtime.faults import ActiveFault
from local.stack import serverless_endpoints
from tests.functional.test_local_faults import FakeClock, GatedService, client_for, outcome, put_fault


@pytest.fixture
def gated() -> Any:
    clock = FakeClock()
    service = GatedService(serverless_endpoints(load_models_config())["iris"])
    runtime = LocalSageMakerRuntime({"iris": service}, clock=clock).start()
    yield runtime, service, clock
    service.gate.set()
    runtime.stop()


def pool_stats(runtime: LocalSageMakerRuntime) -> dict[str, int]:
    with urllib.request.urlopen(f"{runtime.url}/_local/faults", timeout=5) as response:
        return dict(json.loads(response.read())["containers"]["iris"])


def hold_calls(runtime: LocalSageMakerRuntime, count: int) -> tuple[list[threading.Thread], list[str]]:
    """``count`` calls in flight on the gated model (each holding a container), started one after another."""
    results: list[str] = []
    threads: list[threading.Thread] = []
    for _ in range(count):
        client = client_for(runtime)
        thread = threading.Thread(target=lambda c=client: results.append(outcome(c)))
        thread.start()
        threads.append(thread)
        deadline = time.monotonic() + 10
        while runtime.in_flight("iris") < len(threads) and time.monotonic() < deadline:
            time.sleep(0.005)
    assert runtime.in_flight("iris") == count
    return threads, results


def test_calls_take_warm_containers_start_new_ones_up_to_the_limit_and_are_throttled_beyond(gated: Any) -> None:
    runtime, service, clock = gated
    runtime.set_fault("iris", FaultSpec(max_concurrency=2, containers=ContainerSpec(keep_warm_s=60)))
    threads, results = hold_calls(runtime, 2)
    assert pool_stats(runtime)["cold_starts"] == 2  # no warm container: both calls started one
    assert outcome(client_for(runtime)) == "ThrottlingException"  # a third while two are busy, at the limit
    service.gate.set()
    for thread in threads:
        thread.join()
    assert results == ["ok", "ok"]
    assert pool_stats(runtime) == {"containers": 2, "idle": 2, "provisioned": 0, "cold_starts": 2, "throttles": 1}
    # Within keep_warm_s, a call takes a warm container: no cold start.
    clock.now += 59
    assert outcome(client_for(runtime)) == "ok"
    assert pool_stats(runtime)["cold_starts"] == 2
    # The container used at 59 s stays warm; the other, idle 61 s, retired.
    clock.now += 2
    assert pool_stats(runtime)["containers"] == 1
    clock.now += 61  # the last one retires too: the next call is cold again
    assert pool_stats(runtime)["containers"] == 0
    assert outcome(client_for(runtime)) == "ok"
    assert pool_stats(runtime) == {"containers": 1, "idle": 1, "provisioned": 0, "cold_starts": 3, "throttles": 1}


def test_provisioned_containers_start_warm_and_never_retire(gated: Any) -> None:
    runtime, service, clock = gated
    runtime.set_fault("iris", FaultSpec(max_concurrency=3, containers=ContainerSpec(keep_warm_s=10, provisioned=1)))
    service.gate.set()
    assert outcome(client_for(runtime)) == "ok"
    assert pool_stats(runtime)["cold_starts"] == 0
    clock.now += 3600
    assert outcome(client_for(runtime)) == "ok"
    assert pool_stats(runtime) == {"containers": 1, "idle": 1, "provisioned": 1, "cold_starts": 0, "throttles": 0}


def test_a_second_call_spills_over_the_provisioned_container_into_a_cold_one(gated: Any) -> None:
    runtime, service, _ = gated
    runtime.set_fault("iris", FaultSpec(containers=ContainerSpec(keep_warm_s=10, provisioned=1)))
    threads, _ = hold_calls(runtime, 2)
    assert pool_stats(runtime)["cold_starts"] == 1  # no max_concurrency: no throttle either
    service.gate.set()
    for thread in threads:
        thread.join()


def test_a_cold_start_waits_cold_start_s_then_answers() -> None:
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config())).start()
    try:
        runtime.set_fault("iris", FaultSpec(cold_start_s=0.3, containers=ContainerSpec(keep_warm_s=60)))
        client = client_for(runtime)
        started = time.monotonic()
        assert outcome(client) == "ok"  # not ModelNotReadyException: the call waits for its container
        cold_s = time.monotonic() - started
        started = time.monotonic()
        assert outcome(client) == "ok"
        warm_s = time.monotonic() - started
        assert cold_s >= 0.3
        assert warm_s < 0.2
        # Setting a spec again is a fresh deployment: a new pool, its counters from zero.
        runtime.set_fault("iris", FaultSpec(containers=ContainerSpec(keep_warm_s=60)))
        assert pool_stats(runtime)["cold_starts"] == 0
    finally:
        runtime.stop()


def test_the_pool_is_set_over_http_and_absent_without_containers(gated: Any) -> None:
    runtime, _, _ = gated
    status, echoed = put_fault(runtime, {"max_concurrency": 4, "containers": {"keep_warm_s": 30, "provisioned": 2}})
    assert status == 200
    assert echoed["containers"] == {"keep_warm_s": 30, "provisioned": 2}
    assert pool_stats(runtime)["containers"] == 2
    put_fault(runtime, {"max_concurrency": 4})
    with urllib.request.urlopen(f"{runtime.url}/_local/faults", timeout=5) as response:
        assert json.loads(response.read())["containers"] == {}


def test_a_sequence_latency_replays_its_values_in_call_order() -> None:
    spec = FaultSpec(latency=LatencySpec.from_json({"distribution": "sequence", "values_ms": [1, 2.5, 7]}))
    active = ActiveFault(spec, random.Random(0), 0.0)
    assert [active.draw_latency_ms() for _ in range(5)] == [1, 2.5, 7, 1, 2.5]
    assert not spec.uses_random_draws


BAD_SPECS = [
    ({"containers": 600}, "containers is an object"),
    ({"containers": {"provisioned": 1}}, "containers is an object"),
    ({"containers": {"keep_warm_s": 0}}, "keep_warm_s 0 must be a positive number"),
    ({"containers": {"keep_warm_s": "600"}}, "must be a positive number"),
    ({"containers": {"keep_warm_s": 60, "provisioned": -1}}, "provisioned -1 must be a whole number"),
    ({"containers": {"keep_warm_s": 60, "provisioned": 1.5}}, "provisioned 1.5 must be a whole number"),
    ({"containers": {"keep_warm_s": 60, "warm": 1}}, "unknown containers field 'warm'"),
    ({"containers": {"keep_warm_s": 60, "provisioned": 3}, "max_concurrency": 2}, "exceeds max_concurrency 2"),
    ({"containers": {"keep_warm_s": 60}, "cold_start_s": 1, "scale_to_zero_after_s": 5}, "drop scale_to_zero_after_s"),
    ({"latency": {"distribution": "sequence", "values_ms": []}}, "a sequence latency needs values_ms"),
    ({"latency": {"distribution": "sequence", "values_ms": [1, -2]}}, "none negative"),
    ({"latency": {"distribution": "sequence", "values_ms": 5}}, "values_ms is a list"),
]


@pytest.mark.parametrize(("document", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_impossible_container_specs_are_refused(gated: Any, document: Any, message: str) -> None:
    runtime, _, _ = gated
    with pytest.raises(FaultSpecError) as raised:
        FaultSpec.from_json(document)
    assert message in str(raised.value)
    status, answer = put_fault(runtime, document)
    assert status == 400
    assert message in answer["error"]
    assert runtime.fault("iris") is None
