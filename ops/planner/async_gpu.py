"""A model on an asynchronous endpoint that scales to zero, replayed event by event.

Requests queue in arrival order; an instance serves ``per_instance`` of them at once. With no instance, the
first request launches one; while the backlog (queued + in flight) exceeds ``backlog_target`` per instance
launched, another launches, up to ``max_instances``. A launched instance serves after
``params.async_instance_start_s``, and retires after ``params.async_scale_in_idle_s`` without work. Its cost
is the instance-seconds from launch to retirement at the hourly price; the latency a caller sees is queueing +
compute (divided by ``params.gpu_speedup`` on a GPU family) + ``params.async_overhead_ms``. A launch counts as
the option's cold start.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np

from functions.config.prices import RegionPrices
from functions.domain import cost
from infra.config.instances import image_variant
from ops.planner.params import SimulationParams
from ops.planner.results import OptionResult
from ops.planner.trace import ModelTrace

# At one instant, work finishes and instances come up before arrivals queue, and idle clocks run out last.
_DONE, _READY, _ARRIVE, _IDLE = 0, 1, 2, 3


@dataclass(slots=True)
class _Instance:
    launched_s: float
    ready: bool = False
    busy: int = 0
    retired_s: float | None = None
    generation: int = 0


@dataclass(frozen=True, slots=True)
class AsyncShape:
    instance_type: str
    per_instance: int
    max_instances: int
    backlog_target: float


def simulate_async(
    trace: ModelTrace, shape: AsyncShape, *, params: SimulationParams, prices: RegionPrices
) -> OptionResult:
    speedup = params.gpu_speedup if image_variant(shape.instance_type) == "gpu" else 1.0
    compute_s = trace.latency_ms / speedup / 1000.0
    finished = np.empty(len(trace))
    events: list[tuple[float, int, int, int]] = [(t, _ARRIVE, i, 0) for i, t in enumerate(trace.arrivals_s.tolist())]
    heapq.heapify(events)
    instances: list[_Instance] = []
    queue: deque[int] = deque()

    def live() -> list[_Instance]:
        return [instance for instance in instances if instance.retired_s is None]

    def launch(now: float) -> None:
        instances.append(_Instance(launched_s=now))
        heapq.heappush(events, (now + params.async_instance_start_s, _READY, len(instances) - 1, 0))

    def dispatch(now: float) -> None:
        for number, instance in enumerate(instances):
            while queue and instance.ready and instance.retired_s is None and instance.busy < shape.per_instance:
                request = queue.popleft()
                instance.busy += 1
                instance.generation += 1
                heapq.heappush(events, (now + float(compute_s[request]), _DONE, number, request))

    def settle(number: int, now: float) -> None:
        """An instance left without work starts its idle clock; any later work voids that clock."""
        instance = instances[number]
        instance.generation += 1
        if instance.busy == 0 and not queue:
            heapq.heappush(events, (now + params.async_scale_in_idle_s, _IDLE, number, instance.generation))

    while events:
        now, kind, subject, detail = heapq.heappop(events)
        if kind == _ARRIVE:
            queue.append(subject)
            running = live()
            backlog = len(queue) + sum(instance.busy for instance in running)
            if len(running) < shape.max_instances and (not running or backlog > shape.backlog_target * len(running)):
                launch(now)
            dispatch(now)
        elif kind == _IDLE:
            instance = instances[subject]
            if instance.generation == detail and instance.busy == 0 and instance.retired_s is None:
                instance.retired_s = now
        else:
            if kind == _READY:
                instances[subject].ready = True
            else:
                instances[subject].busy -= 1
                finished[detail] = now
            dispatch(now)
            settle(subject, now)
    latencies = (finished - trace.arrivals_s) * 1000.0 + params.async_overhead_ms
    seconds = sum((instance.retired_s or instance.launched_s) - instance.launched_s for instance in instances)
    return OptionResult.build(
        "async",
        latencies,
        cost.instance_cost(prices, instance_type=shape.instance_type, seconds=seconds),
        memory_mb=None,
        provisioned_concurrency=0,
        cold_starts=len(instances),
        throttles=0,
        max_concurrency=shape.per_instance * shape.max_instances,
        instance_type=shape.instance_type,
    )
