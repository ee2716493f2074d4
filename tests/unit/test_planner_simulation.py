"""The planner's simulations against cases computed by hand: constant rate, one burst, idle hours."""

from __future__ import annotations

import math

import numpy as np
import pytest

from functions.config.prices import region_prices
from ops.planner.async_gpu import AsyncShape, simulate_async
from ops.planner.params import SimulationParams
from ops.planner.plan import peak_overlap, provisioned_levels, recommend
from ops.planner.pool import Steps
from ops.planner.results import percentile
from ops.planner.router import tracking_steps
from ops.planner.serverless import simulate_in_lambda, simulate_serverless
from ops.planner.trace import ModelTrace, TraceRequest

PRICES = region_prices("us-east-1")
# No router overhead or network hop, a 500 ms cold start, a model of 0 MB: the arithmetic stays visible.
PLAIN = SimulationParams(
    router_overhead_ms=0,
    serverless_invoke_overhead_ms=0,
    serverless_cold_start_base_ms=500,
    cold_start_per_model_mb_ms=0,
    default_model_size_mb=0,
)
GB = 1024**3


def requests(times: list[float], latency_ms: float = 100.0) -> list[TraceRequest]:
    return [TraceRequest(t, "m", latency_ms, 1000, 100) for t in times]


def test_constant_rate_costs_what_the_price_table_says_with_one_cold_start() -> None:
    result = simulate_serverless(
        requests([float(i) for i in range(3600)]),
        memory_mb=2048,
        max_concurrency=10,
        provisioned_concurrency=0,
        params=PLAIN,
        prices=PRICES,
    )
    assert (result.cold_starts, result.throttles, result.requests) == (1, 0, 3600)
    assert result.p50_ms == result.p99_ms == 100.0  # 36 slowest of 3600: only one is cold
    billed_s = (3600 * 100 + 500) / 1000  # every request's 100 ms, and the first one's cold start
    expected = (
        3600 * PRICES.api_gateway_rest_per_million_requests / 1e6
        + 3600 * PRICES.lambda_requests_per_million / 1e6
        + billed_s * 1.0 * PRICES.lambda_gb_second["arm64"]  # the 1024 MB router waits on every call
        + billed_s * 2.0 * PRICES.sagemaker_serverless_gb_second
        + 3600 * 1100 / GB * PRICES.sagemaker_data_processed_per_gb
    )
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)
    assert result.cost_per_1000_usd == pytest.approx(expected / 3.6, rel=1e-12)


def test_memory_scales_latency_by_the_documented_rule() -> None:
    result = simulate_serverless(
        requests([0.0, 10.0]), memory_mb=1024, max_concurrency=1, provisioned_concurrency=0, params=PLAIN, prices=PRICES
    )
    assert result.latencies_ms[1] == pytest.approx(100 * math.sqrt(2))


def test_one_burst_throttles_what_exceeds_max_concurrency() -> None:
    result = simulate_serverless(
        requests([0.0] * 20), memory_mb=2048, max_concurrency=5, provisioned_concurrency=0, params=PLAIN, prices=PRICES
    )
    assert (result.cold_starts, result.throttles) == (5, 15)
    assert math.isinf(result.p99_ms)
    assert result.p50_ms == math.inf
    assert np.isinf(result.latencies_ms).sum() == 15


def test_a_burst_within_provisioned_concurrency_is_warm() -> None:
    result = simulate_serverless(
        requests([0.0] * 5), memory_mb=2048, max_concurrency=5, provisioned_concurrency=5, params=PLAIN, prices=PRICES
    )
    assert (result.cold_starts, result.throttles, result.p99_ms) == (0, 0, 100.0)


def test_idle_hours_make_every_request_cold_unless_provisioned() -> None:
    times = [i * 7200.0 for i in range(5)]  # 8 h from the first to the last
    cold = simulate_serverless(
        requests(times), memory_mb=2048, max_concurrency=5, provisioned_concurrency=0, params=PLAIN, prices=PRICES
    )
    assert cold.cold_starts == 5
    assert cold.p99_ms == 600.0
    warm = simulate_serverless(
        requests(times), memory_mb=2048, max_concurrency=5, provisioned_concurrency=1, params=PLAIN, prices=PRICES
    )
    assert warm.cold_starts == 0
    assert warm.p99_ms == 100.0
    provisioned = 8 * 3600 * 2.0 * PRICES.sagemaker_serverless_provisioned_gb_second
    calls = (
        5 * PRICES.api_gateway_rest_per_million_requests / 1e6
        + 5 * PRICES.lambda_requests_per_million / 1e6
        + 0.5 * PRICES.lambda_gb_second["arm64"]
        + 0.5 * 2.0 * PRICES.sagemaker_serverless_provisioned_duration_gb_second
        + 5 * 1100 / GB * PRICES.sagemaker_data_processed_per_gb
    )
    assert warm.cost_usd == pytest.approx(provisioned + calls, rel=1e-12)


def test_in_lambda_loads_the_model_on_a_cold_container_and_bills_only_lambda() -> None:
    params = SimulationParams(router_overhead_ms=0, cold_start_per_model_mb_ms=10, default_model_size_mb=30)
    result = simulate_in_lambda(
        requests([0.0, 7200.0], latency_ms=50), router_memory_mb=2048, max_concurrency=10, params=params, prices=PRICES
    )
    assert result.cold_starts == 2
    assert list(result.latencies_ms) == [350.0, 350.0]
    expected = 2 * (PRICES.api_gateway_rest_per_million_requests + PRICES.lambda_requests_per_million) / 1e6
    expected += 0.7 * 2.0 * PRICES.lambda_gb_second["arm64"]
    assert result.cost_usd == pytest.approx(expected, rel=1e-12)


def test_async_scales_from_zero_for_each_idle_gap_and_bills_instance_seconds() -> None:
    trace = ModelTrace.of(requests([i * 7200.0 for i in range(5)], latency_ms=1000))
    shape = AsyncShape("ml.g5.xlarge", per_instance=4, max_instances=2, backlog_target=5)
    result = simulate_async(trace, shape, params=SimulationParams(), prices=PRICES)
    assert result.cold_starts == 5
    assert result.p99_ms == pytest.approx(420_000 + 200 + 1000)  # start, compute / 5 on a GPU, overhead
    assert result.cost_usd == pytest.approx(5 * (420 + 0.2 + 900) / 3600 * PRICES.instance_hour("ml.g5.xlarge"))


def test_async_scales_out_on_backlog_up_to_max_instances() -> None:
    trace = ModelTrace.of(requests([0.0] * 30, latency_ms=1000))
    shape = AsyncShape("ml.m5.large", per_instance=1, max_instances=3, backlog_target=5)
    result = simulate_async(trace, shape, params=SimulationParams(), prices=PRICES)
    assert result.cold_starts == 3  # 1 at once, then at a backlog over 5 and over 10
    # 30 one-second jobs on 3 instances ready at 420 s: the last ends at 430 s
    assert float(result.latencies_ms.max()) == pytest.approx(430_000 + 1000)


def test_percentile_is_nearest_rank() -> None:
    values = np.arange(1.0, 101.0)
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)


def test_steps_integrate_and_sample_a_schedule() -> None:
    steps = Steps(np.array([0.0, 3600.0]), np.array([2, 5], dtype=np.int64))
    assert steps.level_seconds(1800.0, 7200.0) == 1800 * 2 + 3600 * 5
    assert list(steps.at(np.array([0.0, 3599.0, 3600.0]))) == [2, 2, 5]


def test_target_tracking_raises_after_the_scale_out_lag() -> None:
    arrivals = np.arange(0.0, 600.0, 0.1)  # 10 requests/s of 400 ms: 4 concurrent, 6 at target 0.7 (ceil 5.7)
    steps = tracking_steps(arrivals, np.full(len(arrivals), 400.0), 0.0, target=0.7, low=1, high=50, params=PLAIN)
    assert list(steps.levels[:4]) == [1, 1, 1, 6]  # 3 one-minute datapoints above, then the new level


def test_grid_and_recommendation_rules() -> None:
    assert provisioned_levels(3, 12) == [0, 1, 2, 3]
    assert provisioned_levels(40, 12) == [0, 1, 2, 3, 4, 5, 6, 7, 8, 16, 32, 40]
    assert provisioned_levels(40, 5) == [0, 1, 2, 3, 40]
    assert peak_overlap(np.array([0.0, 0.05, 1.0]), np.array([100.0, 100.0, 100.0])) == 2
    slow = simulate_serverless(
        requests([0.0, 3600.0]), memory_mb=1024, max_concurrency=1, provisioned_concurrency=0, params=PLAIN
    )
    fast = simulate_serverless(
        requests([0.0, 3600.0]), memory_mb=4096, max_concurrency=1, provisioned_concurrency=1, params=PLAIN
    )
    assert recommend([slow, fast], target_ms=1000, baseline=slow) is slow  # both within: the cheaper
    assert recommend([slow, fast], target_ms=100, baseline=slow) is fast  # only the faster within
    assert recommend([slow, fast], target_ms=1, baseline=slow) is slow  # none: the cheapest no slower than baseline
