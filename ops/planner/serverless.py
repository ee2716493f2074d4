"""A model on a SageMaker serverless endpoint, called by the router, and a model inside the router itself.

Serverless: latency = router overhead + the HTTPS hop + compute scaled to the memory (params.speed_factor),
plus the endpoint's cold start (base + per MB of model) on a new container. Cost = the router's Lambda time
waiting on the call + serverless duration x memory + data in and out + provisioned concurrency over the trace.

In the router (``lambda`` tier): latency = router overhead + compute scaled to the router's memory, plus the
model's load on a router container that has not loaded it yet (each container loads a model on first use, so
the containers holding this model form their own pool). Cost = Lambda GB-seconds and requests + the API
request; the router's own cold starts and provisioned concurrency are the router's (ops.planner.router).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from functions.config.prices import RegionPrices, region_prices
from functions.domain import cost
from ops.planner import costs
from ops.planner.params import SimulationParams
from ops.planner.pool import Steps, simulate_pool
from ops.planner.results import OptionResult
from ops.planner.trace import ModelTrace, TraceRequest, as_model_trace

DEFAULT_REGION = "us-east-1"
LAMBDA_ACCOUNT_CONCURRENCY = 1000  # AWS: the default regional Lambda concurrency quota


def trace_span_s(trace: ModelTrace) -> tuple[float, float]:
    return float(trace.arrivals_s[0]), float(trace.arrivals_s[-1])


def simulate_serverless(
    requests: Sequence[TraceRequest] | ModelTrace,
    *,
    memory_mb: int,
    max_concurrency: int,
    provisioned_concurrency: int,
    params: SimulationParams,
    prices: RegionPrices | None = None,
    router_memory_mb: int = 1024,
    span_s: tuple[float, float] | None = None,
) -> OptionResult:
    trace = as_model_trace(requests)
    p = prices if prices is not None else region_prices(DEFAULT_REGION)
    compute = trace.latency_ms * params.speed_factor(memory_mb)
    cold_ms = params.serverless_cold_start_base_ms + params.cold_start_per_model_mb_ms * params.model_mb(trace.model)
    run = simulate_pool(
        trace.arrivals_s,
        compute,
        cold_ms,
        keep_warm_s=params.serverless_keep_warm_s,
        max_concurrency=max_concurrency,
        provisioned=Steps.constant(provisioned_concurrency).at(trace.arrivals_s),
    )
    hop = params.router_overhead_ms + params.serverless_invoke_overhead_ms
    served = ~run.throttled
    endpoint_ms = np.where(run.cold, cold_ms + compute, compute)
    router_ms = hop + np.where(served, endpoint_ms, 0.0)
    start, end = span_s if span_s is not None else trace_span_s(trace)
    total = (
        costs.api_requests(p, len(trace))
        + costs.lambda_invocations(p, router_ms, router_memory_mb, np.zeros(len(trace), dtype=bool))
        + costs.serverless_invocations(
            p,
            endpoint_ms[served],
            memory_mb=memory_mb,
            request_bytes=trace.request_bytes[served],
            response_bytes=trace.response_bytes[served],
            on_provisioned=run.on_provisioned[served],
        )
        + provisioned_concurrency
        * cost.serverless_provisioned_cost(p, memory_mb=memory_mb, seconds=max(end - start, 0.0))
    )
    return OptionResult.build(
        "serverless",
        run.latencies_ms + hop,
        total,
        memory_mb=memory_mb,
        provisioned_concurrency=provisioned_concurrency,
        cold_starts=int(run.cold.sum()),
        throttles=int(run.throttled.sum()),
        max_concurrency=max_concurrency,
    )


def simulate_in_lambda(
    requests: Sequence[TraceRequest] | ModelTrace,
    *,
    router_memory_mb: int,
    max_concurrency: int,
    params: SimulationParams,
    prices: RegionPrices | None = None,
) -> OptionResult:
    trace = as_model_trace(requests)
    p = prices if prices is not None else region_prices(DEFAULT_REGION)
    service = params.router_overhead_ms + trace.latency_ms * params.speed_factor(router_memory_mb)
    load_ms = params.cold_start_per_model_mb_ms * params.model_mb(trace.model)
    run = simulate_pool(
        trace.arrivals_s, service, load_ms, keep_warm_s=params.lambda_keep_warm_s, max_concurrency=max_concurrency
    )
    served = ~run.throttled
    total = costs.api_requests(p, len(trace)) + costs.lambda_invocations(
        p, run.latencies_ms[served], router_memory_mb, np.zeros(int(served.sum()), dtype=bool)
    )
    return OptionResult.build(
        "lambda",
        run.latencies_ms,
        total,
        memory_mb=router_memory_mb,
        provisioned_concurrency=0,
        cold_starts=int(run.cold.sum()),
        throttles=int(run.throttled.sum()),
        max_concurrency=max_concurrency,
    )
