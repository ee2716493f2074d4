"""The local runtime's fault injection through unmodified boto3 ``invoke_endpoint``: error rates by type,
latency distributions, cold-start windows (also after scaling to zero) and throttling above a concurrency
limit, set from code and over ``PUT /_local/faults/{endpoint}``. Seeded, and no test waits on a real clock
for more than a few hundred milliseconds."""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from functions.config.models import load_models_config
from local.sagemaker_runtime import FaultSpec, FaultSpecError, LatencySpec, LocalSageMakerRuntime
from local.stack import LOCAL_AWS_ENVIRONMENT, serverless_endpoints
from serving.service import Answer, InvocationService

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def client_for(runtime: LocalSageMakerRuntime) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=runtime.url,
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_REGION"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}, max_pool_connections=16),
    )


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def served(clock: FakeClock) -> Iterator[LocalSageMakerRuntime]:
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config()), clock=clock).start()
    yield runtime
    runtime.stop()


@pytest.fixture
def runtime(served: LocalSageMakerRuntime) -> Iterator[LocalSageMakerRuntime]:
    served.seed(3)
    yield served
    served.clear_faults()


@pytest.fixture(scope="module")
def sagemaker(served: LocalSageMakerRuntime) -> Any:
    return client_for(served)


def outcome(sagemaker: Any) -> str:
    """'ok', or the SageMaker error code boto3 raised."""
    try:
        sagemaker.invoke_endpoint(EndpointName="iris", Body=BODY, ContentType="application/json")
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def put_fault(runtime: LocalSageMakerRuntime, document: Any, endpoint: str = "iris") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{runtime.url}/_local/faults/{endpoint}", data=json.dumps(document).encode(), method="PUT"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_error_rates_by_type_over_http(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    errors = {"ThrottlingException": 0.2, "ModelError": 0.1, "ServiceUnavailable": 0.1}
    status, echoed = put_fault(runtime, {"errors": errors, "model_status": 503, "seed": 1})
    assert status == 200
    assert echoed["errors"] == errors
    counts = Counter(outcome(sagemaker) for _ in range(200))
    assert set(counts) == {"ok", *errors}
    # Shares near the rates (seeded, so these bounds are a fixed fact, not a flaky estimate).
    assert 25 <= counts["ThrottlingException"] <= 55
    assert 8 <= counts["ModelError"] <= 32
    assert 8 <= counts["ServiceUnavailable"] <= 32


def test_the_same_seed_fails_the_same_calls(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    spec = FaultSpec(errors={"InternalFailure": 0.3, "ModelNotReadyException": 0.2}, seed=9)
    runtime.set_fault("iris", spec)
    first = [outcome(sagemaker) for _ in range(30)]
    runtime.set_fault("iris", spec)
    assert [outcome(sagemaker) for _ in range(30)] == first
    # Without a spec seed, the runtime's seed makes it replay.
    runtime.seed(4)
    runtime.set_fault("iris", FaultSpec(errors={"InternalFailure": 0.5}))
    unseeded = [outcome(sagemaker) for _ in range(30)]
    runtime.seed(4)
    runtime.set_fault("iris", FaultSpec(errors={"InternalFailure": 0.5}))
    assert [outcome(sagemaker) for _ in range(30)] == unseeded


@pytest.mark.parametrize(
    ("code", "status", "message_is_null"),
    [
        ("ThrottlingException", 400, True),
        ("ModelNotReadyException", 429, False),
        ("InternalFailure", 500, False),
        ("ServiceUnavailable", 503, False),
        ("InternalDependencyException", 530, False),
        ("ValidationError", 400, False),
    ],
)
def test_injected_errors_look_like_sagemaker(
    runtime: LocalSageMakerRuntime, sagemaker: Any, code: str, status: int, message_is_null: bool
) -> None:
    runtime.set_fault("iris", FaultSpec(errors={code: 1.0}))
    with pytest.raises(ClientError) as raised:
        sagemaker.invoke_endpoint(EndpointName="iris", Body=BODY, ContentType="application/json")
    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert (raised.value.response["Error"].get("Message") is None) is message_is_null


def test_model_error_by_type_carries_the_original_status(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    runtime.set_fault("iris", FaultSpec(errors={"ModelError": 1.0}, model_status=404))
    with pytest.raises(ClientError) as raised:
        sagemaker.invoke_endpoint(EndpointName="iris", Body=BODY, ContentType="application/json")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert raised.value.response["OriginalStatusCode"] == 404


def test_legacy_error_and_typed_errors_combine(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="InternalFailure", error_rate=0.3, errors={"ServiceUnavailable": 0.3}))
    assert set(Counter(outcome(sagemaker) for _ in range(60))) == {"ok", "InternalFailure", "ServiceUnavailable"}


def test_latency_distributions_draw_within_their_shape() -> None:
    rng = random.Random(2)
    uniform = [LatencySpec("uniform", min_ms=10, max_ms=30).draw_ms(rng) for _ in range(1000)]
    assert 10 <= min(uniform) <= 11
    assert 29 <= max(uniform) <= 30
    lognormal = sorted(LatencySpec("lognormal", median_ms=20, p99_ms=400).draw_ms(rng) for _ in range(5000))
    assert 17 <= statistics.median(lognormal) <= 23
    assert 280 <= lognormal[int(0.99 * len(lognormal))] <= 560
    capped = [LatencySpec("lognormal", median_ms=20, p99_ms=400, max_ms=100).draw_ms(rng) for _ in range(1000)]
    assert max(capped) == 100
    assert LatencySpec("fixed", ms=7).draw_ms(rng) == 7


def test_latency_distribution_slows_calls(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    status, echoed = put_fault(runtime, {"latency": {"distribution": "uniform", "min_ms": 60, "max_ms": 80}})
    assert status == 200
    assert echoed["latency"]["distribution"] == "uniform"
    # Through boto3 the call takes at least the drawn latency (a lower bound only: no speed assertion).
    answers: list[float] = []
    for _ in range(3):
        started = time.monotonic()
        assert outcome(sagemaker) == "ok"
        answers.append(time.monotonic() - started)
    assert min(answers) >= 0.06


def test_cold_start_window_answers_model_not_ready(
    runtime: LocalSageMakerRuntime, sagemaker: Any, clock: FakeClock
) -> None:
    runtime.set_fault("iris", FaultSpec(cold_start_s=5))
    assert [outcome(sagemaker) for _ in range(3)] == ["ModelNotReadyException"] * 3
    clock.now += 4.9
    assert outcome(sagemaker) == "ModelNotReadyException"
    clock.now += 0.1
    assert [outcome(sagemaker) for _ in range(3)] == ["ok"] * 3


def test_scale_to_zero_opens_a_new_cold_start(runtime: LocalSageMakerRuntime, sagemaker: Any, clock: FakeClock) -> None:
    status, _ = put_fault(runtime, {"cold_start_s": 2, "scale_to_zero_after_s": 60})
    assert status == 200
    clock.now += 2
    assert outcome(sagemaker) == "ok"
    clock.now += 59  # busy enough: still warm
    assert outcome(sagemaker) == "ok"
    clock.now += 60  # idle for a minute: scaled to zero
    assert outcome(sagemaker) == "ModelNotReadyException"
    clock.now += 1.5
    assert outcome(sagemaker) == "ModelNotReadyException"
    clock.now += 0.5
    assert outcome(sagemaker) == "ok"


class GatedService(InvocationService):
    """The real iris service, holding every call until the test opens the gate: calls stay in flight exactly
    as long as the test needs, with no timing involved."""

    def __init__(self, inner: InvocationService) -> None:
        super().__init__(inner.model)
        self.gate = threading.Event()

    def invoke(self, body: bytes, header_length: str | None = None, custom_attributes: str | None = None) -> Answer:
        assert self.gate.wait(timeout=10), "the test never opened the gate"
        return super().invoke(body, header_length, custom_attributes)


def test_calls_over_max_concurrency_are_throttled() -> None:
    service = GatedService(serverless_endpoints(load_models_config())["iris"])
    runtime = LocalSageMakerRuntime({"iris": service}).start()
    try:
        runtime.set_fault("iris", FaultSpec(max_concurrency=2))
        held = [client_for(runtime) for _ in range(2)]
        results: list[str] = []
        threads = [threading.Thread(target=lambda c=client: results.append(outcome(c))) for client in held]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while runtime.in_flight("iris") < 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert runtime.in_flight("iris") == 2
        # A third, fourth... call while two are held: refused at once, as serverless MaxConcurrency does.
        extra = client_for(runtime)
        assert [outcome(extra) for _ in range(4)] == ["ThrottlingException"] * 4
        service.gate.set()
        for thread in threads:
            thread.join()
        assert results == ["ok", "ok"]
        assert runtime.in_flight("iris") == 0
        assert outcome(extra) == "ok"  # below the limit again
    finally:
        service.gate.set()
        runtime.stop()


def test_faults_can_be_read_back(runtime: LocalSageMakerRuntime) -> None:
    put_fault(runtime, {"errors": {"ThrottlingException": 0.05}, "max_concurrency": 4})
    with urllib.request.urlopen(f"{runtime.url}/_local/faults", timeout=5) as response:
        document = json.loads(response.read())
    assert document["faults"]["iris"]["max_concurrency"] == 4
    assert document["in_flight"] == {"iris": 0}


BAD_SPECS = [
    ({"errors": {"Nope": 0.1}}, "unknown error 'Nope'"),
    ({"errors": {"ThrottlingException": 0.7, "InternalFailure": 0.4}}, "add up to 1.1"),
    ({"errors": {"ThrottlingException": -0.1}}, "must lie in [0, 1]"),
    ({"errors": ["ThrottlingException"]}, "errors is an object"),
    ({"error": "InternalFailure", "errors": {"InternalFailure": 0.1}}, "name it once"),
    ({"latency": {"distribution": "pareto"}}, "is not one of"),
    ({"latency": {"distribution": "uniform", "min_ms": 5}}, "max_ms >= min_ms"),
    ({"latency": {"distribution": "lognormal", "median_ms": 50, "p99_ms": 10}}, "median_ms <= p99_ms"),
    ({"latency": {"distribution": "fixed", "median_ms": 5}}, "unknown field 'median_ms'"),
    ({"latency": {"distribution": "fixed", "ms": 5}, "latency_ms": 5}, "not both"),
    ({"max_concurrency": 0}, "at least 1"),
    ({"cold_start_s": -1}, "must not be negative"),
    ({"scale_to_zero_after_s": 10}, "needs cold_start_s"),
    ({"throttle": 3}, "unknown fault field 'throttle'"),
    ({"error": "ModelError", "model_status": "500"}, "must be an HTTP status code"),
    ({"error": "ModelError", "model_status": 200}, "must be a 4xx or 5xx status"),
]


@pytest.mark.parametrize(("document", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_impossible_fault_specs_are_refused(runtime: LocalSageMakerRuntime, document: Any, message: str) -> None:
    with pytest.raises(FaultSpecError) as raised:
        FaultSpec.from_json(document)
    assert message in str(raised.value)
    status, answer = put_fault(runtime, document)
    assert status == 400
    assert message in answer["error"]
    assert runtime.fault("iris") is None  # a refused spec changes nothing
