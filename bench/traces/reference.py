"""``python -m bench.traces.reference``: the seeded reference trace the capacity planner's headline runs on.

A week (Monday 00:00 UTC onwards) of requests to four models of different sizes and traffic shapes
(:data:`MODELS`; bench/traces/README.md states the figures). Arrivals are Poisson with a time-varying rate,
drawn by thinning (candidates at the model's peak rate, each kept with probability rate(t) / peak); the
spiky model's bursts are clustered arrivals (a burst starts as a Poisson event, then its 50-200 requests land
within a couple of seconds). Per request, the compute time is lognormal around the model's median and the
request and response sizes lognormal around theirs.

The output is deterministic for a seed: timestamps are written as epoch seconds with millisecond precision,
latencies with two decimals, and the gzip header carries no name and mtime 0. ``--hours`` cuts the week short
(starting at ``--start-hour``), ``--scale`` multiplies every arrival rate (burst sizes stay as they are), for
scaled-down variants such as the simulator-vs-local bench replays.
"""

from __future__ import annotations

import argparse
import gzip
import io
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Final

HEADER: Final[str] = "timestamp,model,latency_ms,request_bytes,response_bytes"
DEFAULT_OUT: Final[Path] = Path(__file__).resolve().parent / "reference_week.csv.gz"
DEFAULT_SEED: Final[int] = 16
WEEK_HOURS: Final[float] = 7 * 24
# Monday 2025-01-06 00:00:00 UTC: the week starts on a Monday so weekdays and weekends fall where they should.
START_EPOCH_S: Final[int] = 1_736_121_600


@dataclass(frozen=True, slots=True)
class ModelShape:
    """One model's traffic and size. ``peak_rps`` is the arrival rate at the top of its daily curve;
    ``shape`` names the curve (:func:`relative_rate`); bursts (``bursts_per_day`` > 0) add clusters of
    ``burst_min``..``burst_max`` requests spread over about ``burst_spread_s`` seconds."""

    name: str
    shape: str
    peak_rps: float
    latency_median_ms: float
    latency_sigma: float
    request_median_bytes: float
    response_median_bytes: float
    bursts_per_day: float = 0.0
    burst_min: int = 0
    burst_max: int = 0
    burst_spread_s: float = 2.0


MODELS: Final[tuple[ModelShape, ...]] = (
    # A tiny tabular model (iris-like) called all day by a backend: ~2 ms, the bulk of the trace.
    ModelShape("tabular-tiny", "diurnal", 0.55, 2.0, 0.30, 420, 160),
    # A mid-size text classifier used by people at work: ~40 ms, weekdays 08:00-18:00 UTC.
    ModelShape("text-mid", "business", 0.65, 40.0, 0.35, 2_400, 320),
    # An image model fed by batch jobs: a trickle, then rare bursts of 50-200 near-simultaneous requests.
    ModelShape("image-spiky", "flat", 0.004, 180.0, 0.30, 90_000, 600, bursts_per_day=3.0, burst_min=50, burst_max=200),
    # A heavy model at ~2 s of compute, a few requests an hour.
    ModelShape("heavy-generator", "diurnal", 0.0025, 2_000.0, 0.25, 6_000, 48_000),
)


def relative_rate(shape: str, hour_of_week: float) -> float:
    """The arrival rate at ``hour_of_week`` (0 = Monday 00:00 UTC) as a share of the peak, in [0, 1]."""
    day, hour = divmod(hour_of_week, 24.0)
    weekend = day >= 5
    if shape == "flat":
        return 1.0
    if shape == "diurnal":
        # A cosine day peaking at 15:00 UTC with a night floor of 15%; weekends at 60%.
        daily = 0.15 + 0.85 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 3.0) / 24.0))
        return daily * (0.6 if weekend else 1.0)
    if shape == "business":
        # Weekdays 08:00-18:00 UTC at the peak, a 5% trickle at other times and all weekend.
        return 1.0 if not weekend and 8.0 <= hour < 18.0 else 0.05
    raise ValueError(f"unknown traffic shape {shape!r}")


def arrivals(model: ModelShape, rng: random.Random, start_h: float, hours: float, scale: float) -> list[float]:
    """Seconds from the trace's start at which ``model``'s requests arrive (unsorted when bursts exist)."""
    peak = model.peak_rps * scale
    horizon_s = hours * 3600.0
    times: list[float] = []
    t = rng.expovariate(peak) if peak > 0 else horizon_s
    while t < horizon_s:
        if rng.random() < relative_rate(model.shape, start_h + t / 3600.0):
            times.append(t)
        t += rng.expovariate(peak)
    burst_rate = model.bursts_per_day * scale / 86_400.0
    t = rng.expovariate(burst_rate) if burst_rate > 0 else horizon_s
    while t < horizon_s:
        size = rng.randint(model.burst_min, model.burst_max)
        times.extend(
            offset for _ in range(size) if (offset := t + rng.expovariate(2.0 / model.burst_spread_s)) < horizon_s
        )
        t += rng.expovariate(burst_rate)
    return times


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return rng.lognormvariate(math.log(median), sigma)


def generate(
    *, seed: int = DEFAULT_SEED, hours: float = WEEK_HOURS, scale: float = 1.0, start_hour: float = 0.0
) -> str:
    """The trace's CSV text (header first, rows sorted by time, then model)."""
    if hours <= 0 or scale <= 0 or start_hour < 0:
        raise ValueError("hours and scale must be positive, start_hour not negative")
    rng = random.Random(seed)
    rows: list[tuple[int, str, str]] = []
    start_ms = START_EPOCH_S * 1000 + round(start_hour * 3_600_000)
    for model in MODELS:
        for offset_s in arrivals(model, rng, start_hour, hours, scale):
            latency = lognormal(rng, model.latency_median_ms, model.latency_sigma)
            request = max(1, round(lognormal(rng, model.request_median_bytes, 0.35)))
            response = max(1, round(lognormal(rng, model.response_median_bytes, 0.25)))
            at_ms = start_ms + math.floor(offset_s * 1000)
            rows.append((at_ms, model.name, f"{latency:.2f},{request},{response}"))
    rows.sort()
    out = io.StringIO()
    out.write(HEADER + "\n")
    for at_ms, name, rest in rows:
        out.write(f"{at_ms // 1000}.{at_ms % 1000:03d},{name},{rest}\n")
    return out.getvalue()


def write(text: str, path: Path) -> None:
    """``text`` to ``path``, gzipped when it ends in .gz, with no name or time in the gzip header."""
    data = text.encode()
    if path.suffix == ".gz":
        buffer = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
            gz.write(data)
        data = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traces.reference", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write (.csv or .csv.gz)")
    parser.add_argument("--hours", type=float, default=WEEK_HOURS, help="how long a trace (default: a week)")
    parser.add_argument("--start-hour", type=float, default=0.0, help="hours after Monday 00:00 UTC to start")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every arrival rate by this")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    try:
        text = generate(seed=args.seed, hours=args.hours, scale=args.scale, start_hour=args.start_hour)
    except ValueError as error:
        parser.error(str(error))
    write(text, args.out)
    print(f"{args.out}: {text.count(chr(10)) - 1} requests over {args.hours:g} h")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
