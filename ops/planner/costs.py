"""Totals over many requests from the per-request prices of functions/domain/cost.py.

Every charge there is affine in the billed milliseconds and bytes, so a total over n requests is n times the
fixed part plus the slope times the summed billed milliseconds (each rounded up to 1 ms first, as AWS bills):
the same figure as adding n per-request calls, without n Python calls per option.
"""

from __future__ import annotations

import numpy as np

from functions.config.prices import RegionPrices
from functions.domain import cost
from ops.planner.pool import BoolArray, FloatArray, IntArray

ARCHITECTURE = "arm64"  # the router's (its Powertools layer is the arm64 build)


def billed_ms(durations_ms: FloatArray) -> float:
    return float(np.sum(np.ceil(durations_ms)))


def api_requests(p: RegionPrices, count: int) -> float:
    return count * cost.api_request_cost(p)


def lambda_invocations(p: RegionPrices, durations_ms: FloatArray, memory_mb: int, on_provisioned: BoolArray) -> float:
    """The router's invocations: request charges plus duration, at the provisioned rate where they ran on PC."""
    total = 0.0
    for provisioned in (False, True):
        chosen = durations_ms[on_provisioned == provisioned]
        if len(chosen) == 0:
            continue
        fixed = cost.lambda_cost(
            p, duration_ms=0, memory_mb=memory_mb, architecture=ARCHITECTURE, provisioned=provisioned
        )
        whole = cost.lambda_cost(
            p, duration_ms=billed_ms(chosen), memory_mb=memory_mb, architecture=ARCHITECTURE, provisioned=provisioned
        )
        total += len(chosen) * fixed + (whole - fixed)
    return total


def serverless_invocations(
    p: RegionPrices,
    durations_ms: FloatArray,
    *,
    memory_mb: int,
    request_bytes: IntArray,
    response_bytes: IntArray,
    on_provisioned: BoolArray,
) -> float:
    total = 0.0
    for provisioned in (False, True):
        chosen = on_provisioned == provisioned
        if not chosen.any():
            continue
        total += cost.serverless_cost(
            p,
            duration_ms=billed_ms(durations_ms[chosen]),
            memory_mb=memory_mb,
            request_bytes=int(np.sum(request_bytes[chosen])),
            response_bytes=int(np.sum(response_bytes[chosen])),
            provisioned=provisioned,
        )
    return total
