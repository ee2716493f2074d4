"""The router's provisioned concurrency, simulated over the merged trace of every model (one router serves them
all): fixed, scheduled by hour of day (UTC), or target tracking on utilization.

A request's router time is its chosen option's latency (the per-model options include the router's own
overhead); a router cold start adds ``params.router_cold_start_ms`` to it. Cost here is what the choice
changes: provisioned capacity over the trace, the lower duration rate of invocations on it, and the billed
init of cold starts (Lambda bills the INIT phase of on-demand environments since 1 August 2025).
Target tracking follows Application Auto Scaling: level = ceil(concurrency / target), raised once the need
has held for the scale-out lag, lowered once it has held for the scale-in lag, within [min, max].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from functions.config.prices import RegionPrices
from functions.domain import cost
from ops.planner import costs
from ops.planner.params import SimulationParams
from ops.planner.pool import BoolArray, FloatArray, Steps, simulate_pool

HOUR_S = 3600.0
MINUTE_S = 60.0


@dataclass(frozen=True, slots=True)
class RouterOption:
    strategy: str  # "fixed", "scheduled" or "target_tracking"
    steps: Steps
    cost_usd: float
    cold: BoolArray
    throttled: BoolArray
    description: str
    hourly_levels: tuple[int, ...] = ()  # the schedule, hour of day 0..23 (UTC)
    min_capacity: int = 0
    max_capacity: int = 0
    target_utilization: float | None = None

    @property
    def cold_starts(self) -> int:
        return int(self.cold.sum())


def concurrency_per_minute(arrivals_s: FloatArray, durations_ms: FloatArray, start_s: float) -> FloatArray:
    """Average concurrent executions in each minute from ``start_s``: busy seconds / 60."""
    minutes = ((arrivals_s - start_s) // MINUTE_S).astype(np.int64)
    busy = np.bincount(minutes, weights=durations_ms / 1000.0)
    return busy / MINUTE_S


def hourly_schedule(arrivals_s: FloatArray, durations_ms: FloatArray, start_s: float) -> tuple[int, ...]:
    """Per hour of day: the busiest minute's average concurrency that hour across the trace, rounded up."""
    per_minute = concurrency_per_minute(arrivals_s, durations_ms, start_s)
    hours = ((start_s + np.arange(len(per_minute)) * MINUTE_S) // HOUR_S % 24).astype(np.int64)
    peaks = np.zeros(24)
    np.maximum.at(peaks, hours, per_minute)
    return tuple(math.ceil(value) for value in peaks)


def schedule_steps(levels: tuple[int, ...], start_s: float, end_s: float) -> Steps:
    first = math.floor(start_s / HOUR_S) * HOUR_S
    starts = np.arange(first, end_s + HOUR_S, HOUR_S)
    hours = ((starts // HOUR_S) % 24).astype(np.int64)
    return Steps(starts, np.array(levels, dtype=np.int64)[hours])


def tracking_steps(
    arrivals_s: FloatArray, durations_ms: FloatArray, start_s: float, *, target: float, low: int, high: int,
    params: SimulationParams,
) -> Steps:  # fmt: skip
    need = np.clip(np.ceil(concurrency_per_minute(arrivals_s, durations_ms, start_s) / target), low, high)
    out_lag = max(int(params.target_tracking_scale_out_lag_s // MINUTE_S), 1)
    in_lag = max(int(params.target_tracking_scale_in_lag_s // MINUTE_S), 1)
    level, levels = low, []
    for minute in range(len(need)):
        levels.append(level)
        recent_out = need[max(minute - out_lag + 1, 0) : minute + 1]
        recent_in = need[max(minute - in_lag + 1, 0) : minute + 1]
        if minute + 1 >= out_lag and recent_out.min() > level:
            level = int(recent_out.min())
        elif minute + 1 >= in_lag and recent_in.max() < level:
            level = int(recent_in.max())
    return Steps(start_s + np.arange(len(levels), dtype=np.float64) * MINUTE_S, np.array(levels, dtype=np.int64))


def simulate_router(
    arrivals_s: FloatArray,
    durations_ms: FloatArray,
    steps: Steps,
    *,
    memory_mb: int,
    max_concurrency: int,
    params: SimulationParams,
    prices: RegionPrices,
    span_s: tuple[float, float],
) -> tuple[float, BoolArray, BoolArray]:
    """(the cost the provisioning choice adds, cold per request, throttled per request)."""
    run = simulate_pool(
        arrivals_s,
        durations_ms,
        params.router_cold_start_ms,
        keep_warm_s=params.lambda_keep_warm_s,
        max_concurrency=max_concurrency,
        provisioned=steps.at(arrivals_s),
    )
    capacity = cost.lambda_provisioned_cost(
        prices, memory_mb=memory_mb, seconds=steps.level_seconds(*span_s), architecture=costs.ARCHITECTURE
    )
    on_pc = durations_ms[run.on_provisioned]
    rate_change = costs.lambda_invocations(
        prices, on_pc, memory_mb, np.ones(len(on_pc), dtype=bool)
    ) - costs.lambda_invocations(prices, on_pc, memory_mb, np.zeros(len(on_pc), dtype=bool))
    init = costs.lambda_invocations(
        prices,
        np.full(int(run.cold.sum()), params.router_cold_start_ms),
        memory_mb,
        np.zeros(int(run.cold.sum()), dtype=bool),
    ) - int(run.cold.sum()) * cost.lambda_cost(prices, duration_ms=0, memory_mb=memory_mb)
    return capacity + rate_change + init, run.cold, run.throttled
