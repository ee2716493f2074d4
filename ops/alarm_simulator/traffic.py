"""A small model of a stage's traffic, one minute at a time: what a scenario sets (requests, endpoint health,
latency, async backlog, the sweeper) and what follows from it (concurrency, spillover, answers by status).

Counts are whole numbers spread evenly over time (``spread``), so a scenario is the same on every run.
Concurrency is Little's law (requests per second x seconds per request); its busiest moment in a minute is
taken as the mean plus two standard deviations of a Poisson arrival count (``peak_concurrency``), and the share
of invocations past the provisioned concurrency is half the excess of that peak: a coarse model, meant to put
bursts above or below the provisioned line, not to predict Lambda's exact counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from functions.domain.cost import RequestCosting


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the stage config provisions: the router's and each serverless endpoint's provisioned concurrency."""

    router_provisioned: int
    router_reserved: int | None
    serverless_provisioned: dict[str, int]  # endpoint name -> provisioned concurrency
    async_endpoints: tuple[str, ...]
    models: tuple[str, ...]
    latency_targets_ms: dict[str, float] = field(default_factory=dict)
    # The router stops waiting for the endpoint here (invoke budget less the response reserve) and answers 504.
    deadline_ms: float = 19_700.0
    # What the router prices each request with (None: the stage emits no CostUsd), each model's serverless
    # endpoint by physical name, each async model's instance type and the sweep interval the sweeper charges.
    costing: RequestCosting | None = None
    serverless_endpoints: dict[str, str] = field(default_factory=dict)  # model -> endpoint name
    async_instance_types: dict[str, str] = field(default_factory=dict)  # model -> its async instance type
    sweep_interval_s: int = 300


@dataclass(frozen=True, slots=True)
class Minute:
    """What a scenario sets for one minute (all models alike)."""

    requests: int = 0  # sync infer requests per model
    client_errors: int = 0  # of which answered 4XX
    endpoint_up: bool = True
    fallback: bool = False  # the model has a fallback answer while its endpoint cannot
    endpoint_ms: float = 40.0  # median time inside the endpoint call
    endpoint_errors: int = 0  # endpoint 5XX answers while it is up (each surfaces as a router 502)
    breaker_opens: int = 0  # circuit transitions to open (an open circuit re-opens after each failed probe)
    breaker_closes: int = 0
    async_submissions: int = 0
    async_backlog: int = 0  # requests queued on the async endpoint
    async_instances: int = 0
    oldest_request_s: float = 0.0
    open_job_age_s: float | None = None  # what the sweeper reports this minute; None: it did not run
    jobs_succeeded: int = 0
    dead_letters: int = 0  # messages visible in the dead-letter queue
    crashes: int = 0  # router invocations that failed (timeout, crash): Lambda Errors, API 502
    unhandled: int = 0  # router answers that are a 500 for an exception no rule handles
    forged: int = 0  # notifications the result function ignored as not the job's
    max_feature_psi: float | None = None  # what the drift job publishes per model when it runs; None: it did not


ROUTER_OVERHEAD_MS = 6.0
# The router answers in this time when it does not wait for the endpoint (fallback, open circuit).
DEGRADED_MS = 8.0


def spread(rates: Sequence[float]) -> list[int]:
    """Whole counts for minutes with these expected counts: each minute gets the growth of the floor of the
    running total, so the counts add up to the total and fall evenly (one in 5,000 is one every 5,000)."""
    counts, total = [], 0.0
    for rate in rates:
        counts.append(math.floor(total + rate) - math.floor(total))
        total += rate
    return counts


def peak_concurrency(requests: int, seconds_each: float) -> float:
    mean = requests / 60 * seconds_each
    return 0.0 if requests == 0 else math.ceil(mean + 2 * math.sqrt(mean))


def spillover(requests: int, seconds_each: float, provisioned: int) -> int:
    peak = peak_concurrency(requests, seconds_each)
    return 0 if peak <= provisioned else round(requests * (peak - provisioned) / peak / 2)


@dataclass(frozen=True, slots=True)
class Answers:
    """The router's answers in a minute for one model, by outcome."""

    total: int
    server_errors: int
    client_errors: int
    degraded: int
    endpoint_calls: int
    endpoint_failures: int
    latency_ms: float  # median of the answered requests
    endpoint_latency_ms: float | None
    latencies: tuple[tuple[float, float], ...]  # (ms, share of the answers)

    @property
    def router_seconds(self) -> float:
        return self.latency_ms / 1000


def answers(minute: Minute, deadline_ms: float) -> Answers:
    """What the router answered: a call past ``deadline_ms`` is given up and answered 504 at the deadline (the
    endpoint does not count it as its own error: the client went away)."""
    served = minute.requests - minute.client_errors
    broken = minute.crashes + minute.unhandled
    if minute.endpoint_up:
        median = ROUTER_OVERHEAD_MS + minute.endpoint_ms
        latencies = tuple((min(ms, deadline_ms), share) for ms, share in latency_histogram(median))
        late = sum(share for ms, share in latency_histogram(median) if ms >= deadline_ms)
        timed_out = min(served - minute.endpoint_errors, round(served * late))
        return Answers(
            total=minute.requests,
            server_errors=minute.endpoint_errors + broken + timed_out,
            client_errors=minute.client_errors,
            degraded=0,
            endpoint_calls=served,
            endpoint_failures=minute.endpoint_errors,
            latency_ms=min(median, deadline_ms),
            endpoint_latency_ms=min(minute.endpoint_ms, deadline_ms) if served else None,
            latencies=latencies,
        )
    # Endpoint down: the circuit is open, one half-open probe a minute reaches the endpoint and fails.
    probes = 1 if served else 0
    return Answers(
        total=minute.requests,
        server_errors=broken if minute.fallback else served,
        client_errors=minute.client_errors,
        degraded=served if minute.fallback else 0,
        endpoint_calls=probes,
        endpoint_failures=probes,
        latency_ms=DEGRADED_MS,
        endpoint_latency_ms=minute.endpoint_ms if probes else None,
        latencies=tuple(latency_histogram(DEGRADED_MS)),
    )


def latency_histogram(median_ms: float) -> Iterator[tuple[float, float]]:
    """Shares of requests at latencies around a median: a long right tail (p99 about 3x the median)."""
    for share, factor in ((0.5, 0.8), (0.3, 1.0), (0.15, 1.6), (0.04, 2.2), (0.01, 3.0)):
        yield median_ms * factor, share
