"""``python -m ops.alarm_simulator [--stage dev|prod ...] [--json]``: every alarm of each stage against every
scenario, offline (the stages are synthesized here, no AWS account is touched)."""

from __future__ import annotations

import argparse
import json
import sys

from ops.alarm_simulator.report import as_json, simulate, table
from ops.alarm_simulator.scenarios import SCENARIOS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.alarm_simulator", description=__doc__)
    parser.add_argument(
        "--stage", action="append", help="a stage of infra/stages.json (repeatable; default: dev and prod)"
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    args = parser.parse_args(argv)
    runs = [simulate(stage) for stage in args.stage or ["dev", "prod"]]
    if args.json:
        print(json.dumps([as_json(run) for run in runs], indent=2))
        return 0
    for scenario in SCENARIOS:
        print(f"- {scenario.name}: {scenario.description}{'' if not scenario.quiet else ' (no page may fire)'}")
    for run in runs:
        print(f"\n{table(run)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
