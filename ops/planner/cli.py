"""``python -m ops plan``: load the trace, the stage's settings and the parameters, plan, and print."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from functions.config.prices import PriceTableError
from ops.planner.params import ParamsError, load_params
from ops.planner.plan import StderrProgress, plan
from ops.planner.report import plan_json, plan_text
from ops.planner.settings import SettingsError, load_settings
from ops.planner.stage_diff import stage_diff
from ops.planner.trace import TraceError, load_trace


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace", required=True, help="CSV or CSV.gz: timestamp,model,latency_ms,request_bytes,response_bytes"
    )
    parser.add_argument(
        "--stage", default=None, help="plan for this stage of infra/stages.json and show the change as a diff"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the plan as JSON on stdout (progress stays on stderr)"
    )
    parser.add_argument("--plot", default=None, help="write cost vs p99 and concurrency over time to this .html file")
    parser.add_argument(
        "--params", default=None, help="a JSON object overriding simulation parameters (ops/planner/params.py)"
    )


def run(args: argparse.Namespace) -> int:
    try:
        requests = load_trace(args.trace)
        settings = load_settings(args.stage)
        params = load_params(args.params)
    except (TraceError, SettingsError, ParamsError, PriceTableError) as error:
        print(f"plan: {error}", file=sys.stderr)
        return 2
    result = plan(requests, settings, params, StderrProgress())
    print(f"plan: {result.requests} requests planned in {result.elapsed_s:.1f} s", file=sys.stderr)
    diff = stage_diff(result, args.stage) if args.stage else None
    if args.json:
        print(json.dumps({**plan_json(result), **({"stage_diff": diff} if diff is not None else {})}, indent=2))
    else:
        print(plan_text(result))
        if diff is not None:
            print(f"\nthe change to stage {args.stage} this plan recommends:\n{diff or '(none)'}")
    if args.plot:
        from ops.planner.plot import write_plot

        write_plot(result, Path(args.plot))
        print(f"plan: wrote {args.plot}", file=sys.stderr)
    return 0
