"""The plan: every option per model, the cheapest meeting the model's p99 target, and the router's provisioned
concurrency over the merged trace; plus the all-serverless baseline (reference memory, no provisioned
concurrency anywhere) the headline compares with."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ops.planner.async_gpu import simulate_async
from ops.planner.params import SimulationParams
from ops.planner.pool import FloatArray, IntArray, Steps
from ops.planner.results import OptionResult, percentile
from ops.planner.router import RouterOption, hourly_schedule, schedule_steps, simulate_router, tracking_steps
from ops.planner.serverless import simulate_in_lambda, simulate_serverless
from ops.planner.settings import PlanSettings
from ops.planner.trace import ModelTrace, TraceRequest, by_model

Progress = Callable[[str], None]
TRACKING_TARGET = 0.7  # AWS's example target for LambdaProvisionedConcurrencyUtilization


@dataclass(frozen=True, slots=True)
class ModelPlan:
    model: str
    target_ms: float
    options: list[OptionResult]
    recommended: OptionResult
    baseline: OptionResult  # serverless at the reference memory, no provisioned concurrency
    peak_concurrency: int

    @property
    def meets_target(self) -> bool:
        return self.recommended.p99_ms <= self.target_ms


@dataclass(frozen=True, slots=True)
class Setup:
    """A whole stage: each model's option and the router's; latency end to end (router cold starts added)."""

    cost_usd: float
    p99_ms: float
    p99_by_model: dict[str, float]
    router: RouterOption


@dataclass(frozen=True, slots=True)
class Plan:
    models: dict[str, ModelPlan]
    router_options: list[RouterOption]
    recommended: Setup
    baseline: Setup
    requests: int
    span_s: tuple[float, float]
    elapsed_s: float
    concurrency_per_minute: FloatArray  # the router's, under the recommended options

    @property
    def saving(self) -> float:
        return 1.0 - self.recommended.cost_usd / self.baseline.cost_usd if self.baseline.cost_usd else 0.0


class StderrProgress:
    """A line on stderr at most every ``interval_s`` seconds, never on stdout (``--json`` owns stdout)."""

    def __init__(self, interval_s: float = 2.0) -> None:
        self.interval_s = interval_s
        self.started = self.last = time.monotonic()

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        if now - self.last >= self.interval_s:
            self.last = now
            print(f"plan: {message} ({now - self.started:.0f} s)", file=sys.stderr, flush=True)


def peak_overlap(arrivals_s: FloatArray, durations_ms: FloatArray) -> int:
    """The most requests in flight at once, if each took its duration and none waited."""
    times = np.concatenate((arrivals_s, arrivals_s + durations_ms / 1000.0))
    steps = np.concatenate((np.ones(len(arrivals_s)), -np.ones(len(arrivals_s))))
    order = np.lexsort((steps, times))  # at one instant a departure (-1) before an arrival
    return int(np.max(np.cumsum(steps[order]))) if len(times) else 0


def provisioned_levels(peak: int, limit: int) -> list[int]:
    """0..peak: every level up to 8, then doubling, at most ``limit`` levels, always ending at the peak."""
    levels = list(range(min(peak, 8) + 1))
    while levels[-1] < peak:
        levels.append(min(levels[-1] * 2, peak))
    if len(levels) > limit:
        levels = [*levels[: limit - 1], peak]
    return levels


def model_options(
    trace: ModelTrace, settings: PlanSettings, params: SimulationParams, span_s: tuple[float, float], progress: Progress
) -> tuple[list[OptionResult], int]:
    peak = peak_overlap(trace.arrivals_s, trace.latency_ms)
    cold_ms = params.serverless_cold_start_base_ms + params.cold_start_per_model_mb_ms * params.model_mb(trace.model)
    # Enough containers that cold starts alone do not throttle: the overlap if every request were cold.
    cold_peak = peak_overlap(trace.arrivals_s, trace.latency_ms + cold_ms)
    options: list[OptionResult] = []
    if params.model_mb(trace.model) <= params.in_lambda_max_model_mb:
        options.append(
            simulate_in_lambda(
                trace,
                router_memory_mb=settings.router_memory_mb,
                max_concurrency=settings.router_max_concurrency,
                params=params,
                prices=settings.prices,
            )
        )
    configured = int(settings.serverless_for(trace.model)["max_concurrency"])
    max_concurrency = min(params.serverless_max_concurrency, max(configured, cold_peak))
    for memory in params.serverless_memory_sizes_mb:
        for level in provisioned_levels(min(peak, max_concurrency), params.max_provisioned_options):
            progress(f"{trace.model}: serverless {memory} MB, provisioned {level}")
            options.append(
                simulate_serverless(
                    trace,
                    memory_mb=memory,
                    max_concurrency=max_concurrency,
                    provisioned_concurrency=level,
                    params=params,
                    prices=settings.prices,
                    router_memory_mb=settings.router_memory_mb,
                    span_s=span_s,
                )
            )
    options.append(simulate_async(trace, settings.async_shape, params=params, prices=settings.prices))
    return options, peak


def recommend(options: Sequence[OptionResult], target_ms: float, baseline: OptionResult) -> OptionResult:
    """The cheapest option within the target. Without one, the cheapest no slower than the baseline (a target no
    option meets buys no capacity), and the fastest when even that is impossible."""
    for bound in (target_ms, baseline.p99_ms):
        meeting = [option for option in options if option.p99_ms <= bound]
        if meeting:
            return min(meeting, key=lambda option: (option.cost_usd, option.p99_ms))
    return min(options, key=lambda option: (option.p99_ms, option.cost_usd))


def _setup(
    chosen: dict[str, OptionResult],
    traces: dict[str, ModelTrace],
    router: RouterOption,
    order: IntArray,
    cold_ms: float,
) -> Setup:
    latencies = np.concatenate([chosen[name].latencies_ms for name in traces])[order]
    end_to_end = np.where(router.throttled, np.inf, latencies + np.where(router.cold, cold_ms, 0.0))
    names = np.concatenate([np.full(len(trace), index) for index, trace in enumerate(traces.values())])[order]
    return Setup(
        cost_usd=sum(option.cost_usd for option in chosen.values()) + router.cost_usd,
        p99_ms=percentile(end_to_end, 0.99),
        p99_by_model={name: percentile(end_to_end[names == index], 0.99) for index, name in enumerate(traces)},
        router=router,
    )


def plan(
    requests: Sequence[TraceRequest], settings: PlanSettings, params: SimulationParams, progress: Progress
) -> Plan:
    started = time.monotonic()
    traces = by_model(requests)
    span = (requests[0].timestamp_s, requests[-1].timestamp_s)
    plans: dict[str, ModelPlan] = {}
    for trace in traces.values():
        options, peak = model_options(trace, settings, params, span, progress)
        baseline = next(
            option
            for option in options
            if option.tier == "serverless"
            and option.memory_mb == params.reference_memory_mb
            and option.provisioned_concurrency == 0
        )
        target = settings.target_ms(trace.model)
        plans[trace.model] = ModelPlan(
            trace.model, target, options, recommend(options, target, baseline), baseline, peak
        )
    arrivals = np.concatenate([trace.arrivals_s for trace in traces.values()])
    order = np.argsort(arrivals, kind="stable")
    arrivals = arrivals[order]

    def router_time(chosen: dict[str, OptionResult]) -> FloatArray:
        merged = np.concatenate([chosen[name].latencies_ms for name in traces])[order]
        return np.where(np.isfinite(merged), merged, params.router_overhead_ms)

    def router_option(
        strategy: str, steps: Steps, durations: FloatArray, description: str, **extra: object
    ) -> RouterOption:
        progress(f"router: {description}")
        added, cold, throttled = simulate_router(
            arrivals, durations, steps, memory_mb=settings.router_memory_mb,
            max_concurrency=settings.router_max_concurrency, params=params, prices=settings.prices, span_s=span,
        )  # fmt: skip
        return RouterOption(strategy, steps, added, cold, throttled, description, **extra)  # type: ignore[arg-type]

    recommended_choice = {name: model_plan.recommended for name, model_plan in plans.items()}
    durations = router_time(recommended_choice)
    peak = peak_overlap(arrivals, durations)
    hourly = hourly_schedule(arrivals, durations, span[0])
    router_options = [
        router_option("fixed", Steps.constant(level), durations, f"fixed {level}")
        for level in provisioned_levels(peak, params.max_provisioned_options)
    ]
    router_options.append(
        router_option(
            "scheduled", schedule_steps(hourly, *span), durations, "scheduled by hour (UTC)", hourly_levels=hourly
        )
    )
    high = max(peak, 1)
    router_options.append(
        router_option(
            "target_tracking",
            tracking_steps(arrivals, durations, span[0], target=TRACKING_TARGET, low=1, high=high, params=params),
            durations,
            f"target tracking {TRACKING_TARGET:g}, 1..{high}",
            min_capacity=1,
            max_capacity=high,
            target_utilization=TRACKING_TARGET,
        )
    )
    setups = [
        _setup(recommended_choice, traces, option, order, params.router_cold_start_ms) for option in router_options
    ]

    # The router must keep every model that meets its target within it; one that cannot meet it anyway buys no
    # router capacity.
    bounds = {name: model_plan.target_ms if model_plan.meets_target else math.inf for name, model_plan in plans.items()}

    def shortfall(setup: Setup) -> float:
        return max(setup.p99_by_model[name] / bound for name, bound in bounds.items())

    best = min(setups, key=lambda setup: (max(shortfall(setup), 1.0), setup.cost_usd))
    baseline_choice = {name: model_plan.baseline for name, model_plan in plans.items()}
    baseline_router = router_option("fixed", Steps.constant(0), router_time(baseline_choice), "fixed 0")
    return Plan(
        models=plans,
        router_options=router_options,
        recommended=best,
        baseline=_setup(baseline_choice, traces, baseline_router, order, params.router_cold_start_ms),
        requests=len(requests),
        span_s=span,
        elapsed_s=time.monotonic() - started,
        concurrency_per_minute=np.ceil(_per_minute(arrivals, durations, span[0])),
    )


def _per_minute(arrivals: FloatArray, durations: FloatArray, start_s: float) -> FloatArray:
    from ops.planner.router import concurrency_per_minute

    return concurrency_per_minute(arrivals, durations, start_s)


def headline(plan_result: Plan) -> str:
    recommended, baseline = plan_result.recommended, plan_result.baseline
    verdict = (
        "meets the target (>= 30% cheaper at equal or better p99)"
        if plan_result.saving >= 0.30 and recommended.p99_ms <= baseline.p99_ms
        else "misses the target (>= 30% cheaper at equal or better p99)"
    )
    return (
        f"recommended: ${recommended.cost_usd:.4f}, p99 {recommended.p99_ms:.0f} ms; all-serverless without "
        f"provisioned concurrency: ${baseline.cost_usd:.4f}, p99 {baseline.p99_ms:.0f} ms; saving "
        f"{plan_result.saving * 100:.1f}%: {verdict}"
        if math.isfinite(baseline.p99_ms)
        else f"recommended: ${recommended.cost_usd:.4f}; the baseline throttles over 1% (p99 infinite)"
    )
