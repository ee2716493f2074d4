"""The capacity planner's headline on the committed reference trace (bench/traces/reference_week.csv.gz).

Two comparisons against all-serverless without provisioned concurrency (every model at 2048 MB, the stage
default; the router without provisioned concurrency):
1. the plan at the stage's p99 target (the ``defaults``' 1000 ms for the trace's models);
2. the plan held to each model's baseline p99 instead ("at equal or better p99"), the issue's headline:
   target >= 30% cheaper.
Both print cost, p99 overall and per model, and the saving; the second prints whether it meets the target.

    python -m bench.capacity_plan [--trace FILE] [--stage S]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
from pathlib import Path

from ops.planner.params import SimulationParams
from ops.planner.plan import Plan, StderrProgress, plan
from ops.planner.settings import load_settings
from ops.planner.trace import load_trace

REFERENCE_TRACE = Path(__file__).resolve().parent / "traces" / "reference_week.csv.gz"
TARGET_SAVING = 0.30


def _ms(value: float) -> str:
    return f"{value:.0f} ms" if math.isfinite(value) else "inf (over 1% throttled)"


def _report(title: str, result: Plan) -> None:
    print(f"\n{title}")
    for name, model in result.models.items():
        print(
            f"  {name:<18} {model.recommended.label:<34} ${model.recommended.cost_usd:>9.4f}  "
            f"p99 {_ms(result.recommended.p99_by_model[name])} (baseline ${model.baseline.cost_usd:.4f}, "
            f"p99 {_ms(result.baseline.p99_by_model[name])})"
        )
    print(f"  router: {result.recommended.router.description}, adds ${result.recommended.router.cost_usd:.4f}")
    print(
        f"  total: ${result.recommended.cost_usd:.4f}, p99 {_ms(result.recommended.p99_ms)} vs all-serverless "
        f"${result.baseline.cost_usd:.4f}, p99 {_ms(result.baseline.p99_ms)}: saving {result.saving * 100:.1f}%"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity_plan", description=__doc__)
    parser.add_argument("--trace", default=str(REFERENCE_TRACE))
    parser.add_argument("--stage", default=None)
    args = parser.parse_args(argv)
    started = time.monotonic()
    requests = load_trace(args.trace)
    settings = load_settings(args.stage)
    params = SimulationParams()
    print(f"capacity plan: {len(requests)} requests from {args.trace} read in {time.monotonic() - started:.1f} s")
    at_target = plan(requests, settings, params, StderrProgress())
    _report(f"1. at the stage's p99 target ({settings.default_target_ms:.0f} ms), planned in "
            f"{at_target.elapsed_s:.1f} s:", at_target)  # fmt: skip
    baseline_p99 = dict(at_target.baseline.p99_by_model)  # end to end, router cold starts included
    equal = plan(requests, dataclasses.replace(settings, targets_ms=baseline_p99), params, StderrProgress())
    _report(f"2. at equal or better p99 than all-serverless, planned in {equal.elapsed_s:.1f} s:", equal)
    no_worse = (
        all(equal.recommended.p99_by_model[name] <= equal.baseline.p99_by_model[name] for name in equal.models)
        and equal.recommended.p99_ms <= equal.baseline.p99_ms
    )
    met = equal.saving >= TARGET_SAVING and no_worse
    print(
        f"\nheadline: the tiered setup costs {equal.saving * 100:.1f}% less than all-serverless without provisioned "
        f"concurrency, p99 {'equal or better' if no_worse else 'WORSE'} for every model: "
        f"{'meets' if met else 'MISSES'} the {TARGET_SAVING * 100:.0f}% target "
        f"(total time {time.monotonic() - started:.1f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
