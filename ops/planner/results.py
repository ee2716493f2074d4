"""What one simulated option reports, and the percentiles it reports them with."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ops.planner.pool import FloatArray


def percentile(latencies_ms: FloatArray, share: float) -> float:
    """Nearest rank: the smallest latency at least ``share`` of the requests do not exceed; a throttled request
    counts as infinitely slow, so an option throttling more than 1% has an infinite p99."""
    if len(latencies_ms) == 0:
        return 0.0
    ordered = np.sort(latencies_ms)
    return float(ordered[max(math.ceil(share * len(ordered)) - 1, 0)])


@dataclass(frozen=True, slots=True)
class OptionResult:
    tier: str  # "lambda" (in the router), "serverless" or "async"
    memory_mb: int | None
    provisioned_concurrency: int
    cost_usd: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    cold_starts: int
    throttles: int
    requests: int
    latencies_ms: FloatArray  # per request, in the trace's order; inf when throttled
    max_concurrency: int | None = None
    instance_type: str | None = None

    @classmethod
    def build(cls, tier: str, latencies_ms: FloatArray, cost_usd: float, **fields: Any) -> OptionResult:
        return cls(
            tier=tier,
            cost_usd=cost_usd,
            p50_ms=percentile(latencies_ms, 0.50),
            p95_ms=percentile(latencies_ms, 0.95),
            p99_ms=percentile(latencies_ms, 0.99),
            requests=len(latencies_ms),
            latencies_ms=latencies_ms,
            **fields,
        )

    @property
    def cost_per_1000_usd(self) -> float:
        return self.cost_usd / self.requests * 1000 if self.requests else 0.0

    @property
    def label(self) -> str:
        if self.tier == "async":
            return f"async {self.instance_type}"
        return f"{self.tier} {self.memory_mb} MB PC {self.provisioned_concurrency}"

    def to_json(self) -> dict[str, Any]:
        """The contract's keys first; an infinite percentile (over 1% throttled) is null."""

        def ms(value: float) -> float | None:
            return round(value, 3) if math.isfinite(value) else None

        return {
            "tier": self.tier,
            "memory_mb": self.memory_mb,
            "provisioned_concurrency": self.provisioned_concurrency,
            "cost_usd": round(self.cost_usd, 8),
            "p99_ms": ms(self.p99_ms),
            "cold_starts": self.cold_starts,
            "cost_per_1000_usd": round(self.cost_per_1000_usd, 8),
            "p50_ms": ms(self.p50_ms),
            "p95_ms": ms(self.p95_ms),
            "throttles": self.throttles,
            "requests": self.requests,
            "max_concurrency": self.max_concurrency,
            "instance_type": self.instance_type,
        }
