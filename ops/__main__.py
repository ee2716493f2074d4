"""``python -m ops``: operator commands for the async path, against ``make local`` or a deployed stack.

python -m ops redrive --dry-run              # how many dead letters would move (local stack)
python -m ops redrive --stack InferenceRouter-prod --limit 100
python -m ops resubmit <job id> --stack InferenceRouter-prod
python -m ops plan --trace bench/traces/reference_week.csv.gz --stage prod [--json] [--plot plan.html]
python -m ops rollout status [--stage prod | --local] [--window 60] [--json]
python -m ops rollout promote iris 2 [--config functions/models.json] [--dry-run]
python -m ops rollout rollback iris [--dry-run]
python -m ops baseline --model iris --data iris.csv [--out PATH]
python -m ops drift --local [--json] [--model iris]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ops.drift.cli import add_baseline_arguments, add_drift_arguments, run_baseline, run_drift
from ops.planner.cli import add_arguments as add_plan_arguments
from ops.planner.cli import run as run_plan
from ops.rollout.cli import add_arguments as add_rollout_arguments
from ops.rollout.cli import run as run_rollout
from ops.targets import LOCAL_STATE_FILE, Target, TargetError, apply_environment, local_target, stack_target


def _target(args: argparse.Namespace) -> Target:
    return stack_target(args.stack) if args.stack else local_target(Path(args.local_state))


def _redrive(args: argparse.Namespace) -> int:
    from ops.redrive import progress_printer, redrive

    target = _target(args)
    apply_environment(target)
    sqs = target.client("sqs")
    result = redrive(
        sqs,
        target.dead_letter_queue_url,
        target.result_queue_url,
        dry_run=args.dry_run,
        limit=args.limit,
        progress=progress_printer(),
    )
    if result.dry_run:
        print(f"{target.description}: {result.remaining_estimate} message(s) in the dead-letter queue would move")
    else:
        print(
            f"\n{target.description}: moved {result.moved} message(s) to the result queue; "
            f"{result.failed} failed to send; about {result.remaining_estimate} left in the dead-letter queue"
        )
    return 1 if result.failed else 0


def _resubmit(args: argparse.Namespace) -> int:
    target = _target(args)
    apply_environment(target)
    from functions.adapters.async_service import build_async_service
    from functions.config.async_settings import AsyncSettings
    from functions.config.models import load_models_config
    from ops.resubmit import ResubmitError, resubmit

    settings = AsyncSettings.from_env()
    assert settings is not None  # the target's environment sets ASYNC_BUCKET and JOB_TABLE
    service = build_async_service(settings, endpoint_name_prefix=target.endpoint_name_prefix)
    try:
        job = resubmit(service, load_models_config(), args.job_id, force=args.force)
    except ResubmitError as error:
        print(f"resubmit: {error}", file=sys.stderr)
        return 1
    print(f"{target.description}: job {args.job_id} re-submitted as {job.job_id} (GET /v2/jobs/{job.job_id})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--stack", help="a deployed stack (e.g. InferenceRouter-prod); default: the running `make local`"
    )
    where.add_argument(
        "--local-state",
        default=str(LOCAL_STATE_FILE),
        help="the state file a running `make local` writes (default: .local/state.json in the repository)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    redrive = commands.add_parser("redrive", parents=[where], help="move dead letters back to the result queue")
    redrive.add_argument("--dry-run", action="store_true", help="count what would move; move nothing")
    redrive.add_argument("--limit", type=int, default=None, help="move at most this many")
    redrive.set_defaults(run=_redrive)
    again = commands.add_parser("resubmit", parents=[where], help="submit a failed job's input again as a new job")
    again.add_argument("job_id")
    again.add_argument("--force", action="store_true", help="also re-submit a job that did not fail")
    again.set_defaults(run=_resubmit)
    planner = commands.add_parser("plan", help="replay a request trace and recommend each model's tier and capacity")
    add_plan_arguments(planner)
    planner.set_defaults(run=run_plan)
    rollout = commands.add_parser("rollout", help="model versions' weights and health; promote or roll back")
    add_rollout_arguments(rollout)
    rollout.set_defaults(run=run_rollout)
    baseline = commands.add_parser("baseline", help="a model's reference statistics for the drift job")
    add_baseline_arguments(baseline)
    baseline.set_defaults(run=run_baseline)
    drift = commands.add_parser("drift", help="captured inputs and answers against each model's baseline")
    add_drift_arguments(drift)
    drift.set_defaults(run=run_drift)
    args = parser.parse_args(argv)
    if getattr(args, "limit", None) is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    try:
        code: int = args.run(args)
    except TargetError as error:
        print(f"{args.command}: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
