"""The container pool that Lambda and SageMaker serverless both run, replayed event by event.

Rules (the local runtime's warm pool follows the same ones, so the two can be compared):
- a request takes an idle provisioned container first, then the most recently freed warm one;
- without one it starts a new container (its cold start adds to its latency) while fewer than
  ``max_concurrency`` containers exist, else it is throttled;
- an on-demand container idle longer than ``keep_warm_s`` retires; provisioned ones start warm and never do.
Provisioned concurrency may change over time (scheduled or target tracking): ``provisioned[i]`` is the level
when request ``i`` arrives. A heap of departures keeps the replay O(n log n).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class PoolRun:
    latencies_ms: FloatArray  # inf for a throttled request
    cold: BoolArray
    throttled: BoolArray
    on_provisioned: BoolArray
    peak_concurrency: int


def simulate_pool(
    arrivals_s: FloatArray,
    service_ms: FloatArray,
    cold_start_ms: float,
    *,
    keep_warm_s: float,
    max_concurrency: int,
    provisioned: IntArray | None = None,
) -> PoolRun:
    count = len(arrivals_s)
    latencies = np.empty(count)
    cold = np.zeros(count, dtype=bool)
    throttled = np.zeros(count, dtype=bool)
    on_pc = np.zeros(count, dtype=bool)
    levels = provisioned.tolist() if provisioned is not None else [0] * count
    departures: list[tuple[float, bool]] = []  # (when, was it a provisioned container)
    idle: deque[float] = deque()  # when each idle on-demand container was freed, oldest first
    busy_pc = busy_on_demand = peak = 0
    for index, (now, service, level) in enumerate(zip(arrivals_s.tolist(), service_ms.tolist(), levels, strict=True)):
        while departures and departures[0][0] <= now:
            freed, was_pc = heapq.heappop(departures)
            if was_pc:
                busy_pc -= 1
            else:
                busy_on_demand -= 1
                idle.append(freed)
        while idle and idle[0] + keep_warm_s < now:
            idle.popleft()
        if busy_pc < level:
            busy_pc += 1
            on_pc[index] = True
            latency = service
        elif idle:
            idle.pop()
            busy_on_demand += 1
            latency = service
        elif max(level, busy_pc) + busy_on_demand < max_concurrency:
            busy_on_demand += 1
            cold[index] = True
            latency = cold_start_ms + service
        else:
            throttled[index] = True
            latencies[index] = np.inf
            continue
        latencies[index] = latency
        heapq.heappush(departures, (now + latency / 1000.0, bool(on_pc[index])))
        peak = max(peak, busy_pc + busy_on_demand)
    return PoolRun(latencies, cold, throttled, on_pc, peak)


@dataclass(frozen=True, slots=True)
class Steps:
    """A provisioned-concurrency level over time: ``levels[i]`` holds from ``starts_s[i]`` to the next start."""

    starts_s: FloatArray
    levels: IntArray

    @classmethod
    def constant(cls, level: int) -> Steps:
        return cls(np.array([-np.inf]), np.array([level], dtype=np.int64))

    def at(self, times_s: FloatArray) -> IntArray:
        return self.levels[np.searchsorted(self.starts_s, times_s, side="right") - 1]

    def level_seconds(self, start_s: float, end_s: float) -> float:
        """The integral of the level over [start_s, end_s]: what provisioned concurrency bills."""
        ends = np.append(self.starts_s[1:], np.inf)
        spans = np.minimum(ends, end_s) - np.maximum(self.starts_s, start_s)
        return float(np.sum(np.clip(spans, 0.0, None) * self.levels))
