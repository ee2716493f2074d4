"""One request's CostUsd as the router emits it, against the same figure worked out by hand from prices.json."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from functions.config.api_routes import MODEL_INFER
from functions.config.models import load_models_config
from functions.config.prices import ServerlessSize, default_size_to_json, region_prices
from functions.config.router_settings import RouterSettings, SettingsError
from functions.domain.cost import RequestCosting
from functions.handlers.router.app import RouterClients, create_app
from functions.handlers.router.request_metrics import RequestMetrics, TimedModelCalls
from local.api_gateway import LocalLambdaContext, build_rest_event

PRICES = region_prices("us-east-1")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, ms: float) -> None:
        self.now += ms / 1000


class FakeEndpoint:
    """A serverless endpoint that takes ``ms`` and answers ``answer``."""

    def __init__(self, clock: Clock, ms: float, answer: bytes) -> None:
        self.clock, self.ms, self.answer = clock, ms, answer

    def invoke(self, endpoint: str, body: bytes, **_: Any) -> bytes:
        self.clock.advance(self.ms)
        return self.answer

    def invoke_async(self, *args: Any, **kwargs: Any) -> tuple[str, str | None]:
        raise AssertionError("not called")


def one_request(costing: RequestCosting, *, router_ms: float, model: str = "iris",
                call: Callable[[TimedModelCalls], object] | None = None) -> dict[str, Any]:  # fmt: skip
    """The document of one infer request that spent ``router_ms`` in the handler, calling ``call`` in it."""
    clock, lines = Clock(), list[str]()
    metrics = RequestMetrics(
        load_models_config(), {}, cold_start=False, clock=clock, emit=lines.append, costing=costing
    )
    endpoint = FakeEndpoint(clock, 37.0, b"x" * 80)
    calls = TimedModelCalls(endpoint, metrics)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        before = clock()
        if call is not None:
            call(calls)
        clock.advance(router_ms - (clock() - before) * 1000)
        return {"statusCode": 200}

    event = {"resource": MODEL_INFER.resource, "pathParameters": {"model": model}}
    metrics.measured(handler)(event, None)
    [line] = lines
    document: dict[str, Any] = json.loads(line)
    return document


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def test_a_serverless_request_costs_what_the_price_table_says_by_hand() -> None:
    """A 2048 MB serverless call of 37 ms, 120 B in and 80 B out, through a 1024 MB arm64 router of 52 ms."""
    costing = RequestCosting(PRICES, 1024, False, {"dev-iris": ServerlessSize(2048, 0)}.get)
    document = one_request(
        costing, router_ms=52.0, call=lambda calls: calls.invoke("dev-iris", b"i" * 120, attempt_ms=lambda: 1000)
    )
    api = 3.50 / 1_000_000  # api_gateway_rest_per_million_requests
    lambda_request = 0.20 / 1_000_000  # lambda_requests_per_million
    router = 0.052 * (1024 / 1024) * 0.0000133334  # 52 ms at 1 GB, lambda_gb_second.arm64
    endpoint = 0.037 * (2048 / 1024) * 0.00002  # 37 ms at 2 GB, sagemaker_serverless_gb_second
    data = (120 + 80) / 1024**3 * 0.016  # sagemaker_data_processed_per_gb
    assert api + lambda_request + router + endpoint + data == pytest.approx(5.87631703e-06)
    assert document["CostUsd"] == pytest.approx(5.87631703e-06, rel=1e-9)
    [directive, rollup] = document["_aws"]["CloudWatchMetrics"]
    assert {"Name": "CostUsd", "Unit": "None"} in directive["Metrics"]
    assert directive["Dimensions"] == [["service", "model"], ["service", "model", "route"]]
    # The stage total the cost alarm reads: the same values by service alone.
    assert rollup["Dimensions"] == [["service"]]
    assert rollup["Metrics"] == [{"Name": "Requests", "Unit": "Count"}, {"Name": "CostUsd", "Unit": "None"}]
    assert document["route"] == "serverless"


def test_provisioned_router_and_endpoint_use_the_provisioned_duration_rates() -> None:
    costing = RequestCosting(PRICES, 2048, True, {"dev-iris": ServerlessSize(1024, 2)}.get)
    document = one_request(
        costing, router_ms=40.2, call=lambda calls: calls.invoke("dev-iris", b"", attempt_ms=lambda: 1000)
    )
    by_hand = 3.5e-6 + 0.2e-6 + 0.041 * 2 * 0.0000077778 + 0.037 * 1 * 0.0000056 + 80 / 1024**3 * 0.016
    assert document["CostUsd"] == pytest.approx(by_hand, rel=1e-9)


def test_a_request_without_an_endpoint_call_costs_the_api_and_the_router_only() -> None:
    costing = RequestCosting(PRICES, 1024, False, {"dev-iris": ServerlessSize(2048, 0)}.get)
    document = one_request(costing, router_ms=3.0)
    assert document["CostUsd"] == pytest.approx(3.5e-6 + 0.2e-6 + 0.003 * 0.0000133334, rel=1e-9)


def test_no_prices_no_cost_metric() -> None:
    clock, lines = Clock(), list[str]()
    metrics = RequestMetrics(load_models_config(), {}, cold_start=False, clock=clock, emit=lines.append)
    metrics.measured(lambda event, context: {"statusCode": 200})(
        {"resource": MODEL_INFER.resource, "pathParameters": {"model": "iris"}}, None
    )
    assert "CostUsd" not in json.loads(lines[0])


def test_the_router_reads_its_prices_and_endpoint_sizes_from_the_environment() -> None:
    settings = RouterSettings.from_env(
        {
            "PRICES": PRICES.to_json(),
            "SERVERLESS_ENDPOINT_SIZES": default_size_to_json(ServerlessSize(2048, 1)),
            "SERVERLESS_SIZE_PARAMETER_PREFIX": "/inference-router/dev/serverless-sizes/",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1536",
        }
    )
    assert settings.prices == PRICES
    assert settings.serverless_default_size == ServerlessSize(2048, 1)
    assert settings.serverless_size_prefix == "/inference-router/dev/serverless-sizes/"
    assert settings.memory_mb == 1536
    unset = RouterSettings.from_env({})
    assert (unset.prices, unset.serverless_default_size, unset.serverless_size_prefix) == (None, None, None)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PRICES", "{", r"PRICES: prices: invalid JSON"),
        ("PRICES", "{}", r"PRICES: prices\.\w+: is required"),
        ("SERVERLESS_ENDPOINT_SIZES", "[", r"SERVERLESS_ENDPOINT_SIZES: serverless sizes: invalid JSON"),
        ("SERVERLESS_ENDPOINT_SIZES", "[]", r'must be \{"\*": the stage default\} alone'),
        (
            "SERVERLESS_ENDPOINT_SIZES",
            '{"*": {"memory_mb": 1, "provisioned_concurrency": 0}, "dev-iris": {}}',
            r"alone \(each endpoint's own size is its SSM parameter under SERVERLESS_SIZE_PARAMETER_PREFIX\)",
        ),
        ("SERVERLESS_ENDPOINT_SIZES", '{"*": {"memory_mb": 1}}', r"\*: must name memory_mb and provisioned"),
        ("SERVERLESS_ENDPOINT_SIZES", '{"*": {"memory_mb": 0, "provisioned_concurrency": 0}}', r"\*: memory_mb > 0"),
        ("SERVERLESS_ENDPOINT_SIZES", '{"*": {"memory_mb": 1, "provisioned_concurrency": true}}', r"\*: memory_mb"),
        (
            "SERVERLESS_SIZE_PARAMETER_PREFIX",
            "inference-router/dev/",
            r"SERVERLESS_SIZE_PARAMETER_PREFIX='inference-router/dev/': must be an SSM parameter path ending in '/'",
        ),
        ("SERVERLESS_SIZE_PARAMETER_PREFIX", "/inference-router/dev", r"must be an SSM parameter path ending in '/'"),
        ("SERVERLESS_SIZE_PARAMETER_PREFIX", "/inference router/", r"must be an SSM parameter path"),
    ],
)
def test_a_bad_costing_variable_is_refused_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        RouterSettings.from_env({name: value})


def test_an_endpoint_is_costed_at_the_size_its_lookup_gives() -> None:
    asked: list[str] = []

    def lookup(endpoint: str) -> ServerlessSize:
        asked.append(endpoint)
        return ServerlessSize(2048, 0)

    document = one_request(
        RequestCosting(PRICES, 1024, False, lookup),
        router_ms=52.0,
        call=lambda calls: calls.invoke("dev-wine", b"i" * 120, attempt_ms=lambda: 1000),
    )
    by_hand = 3.5e-6 + 0.2e-6 + 0.052 * 0.0000133334 + 0.037 * 2 * 0.00002 + 200 / 1024**3 * 0.016
    assert document["CostUsd"] == pytest.approx(by_hand, rel=1e-9)
    assert asked == ["dev-wine"]
    # No serverless call, no lookup: only the serverless route asks for a size.
    one_request(RequestCosting(PRICES, 1024, False, lookup), router_ms=3.0)
    assert asked == ["dev-wine"]


def test_an_on_demand_init_is_billed_with_the_first_costed_request_only() -> None:
    clock, lines = Clock(), list[str]()
    costing = RequestCosting(PRICES, 1024, False, {}.get)
    metrics = RequestMetrics(load_models_config(), {}, cold_start=True, clock=clock, emit=lines.append, costing=costing)
    started = clock()
    clock.advance(412.3)  # imports, config, clients
    metrics.initialised(started)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        clock.advance(20.0)
        return {"statusCode": 200}

    infer = {"resource": MODEL_INFER.resource, "pathParameters": {"model": "iris"}}
    metrics.measured(handler)({"resource": "/v2/health/live"}, None)  # the cold start's document, no cost in it
    metrics.measured(handler)(infer, None)
    metrics.measured(handler)(infer, None)
    first, second = (json.loads(line) for line in lines[1:])
    assert "CostUsd" not in json.loads(lines[0])
    # Init and invocation are billed together, rounded up once: 412.3 + 20 ms -> 433 ms at 1 GB, arm64.
    assert first["CostUsd"] == pytest.approx(3.5e-6 + 0.2e-6 + 0.433 * 0.0000133334, rel=1e-9)
    assert second["CostUsd"] == pytest.approx(3.5e-6 + 0.2e-6 + 0.020 * 0.0000133334, rel=1e-9)


class NoSageMaker:
    def invoke(self, *args: Any, **kwargs: Any) -> bytes:
        raise AssertionError("not called: digits runs in the router")


DIGITS = json.dumps({"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}).encode()


@pytest.mark.parametrize(
    ("initialization_type", "billed"),
    [("on-demand", True), ("provisioned-concurrency", False), ("snap-start", False)],
)
def test_the_router_bills_only_an_on_demand_init(
    initialization_type: str, billed: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = RouterSettings.from_env(
        {"PRICES": PRICES.to_json(), "AWS_LAMBDA_INITIALIZATION_TYPE": initialization_type}
    )
    app = create_app(settings, None, RouterClients(NoSageMaker()), init_started=time.perf_counter() - 3.0)
    event = build_rest_event("POST", "/v2/models/digits/infer", {"Content-Type": "application/json"}, DIGITS)
    capsys.readouterr()
    for _ in range(2):
        assert app(event, LocalLambdaContext())["statusCode"] == 200
    costs = [json.loads(line)["CostUsd"] for line in capsys.readouterr().out.splitlines() if '"CostUsd"' in line]
    three_seconds = 3.0 * PRICES.lambda_gb_second["arm64"]
    assert (costs[0] > three_seconds) is billed
    assert costs[1] < three_seconds
