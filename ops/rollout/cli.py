"""``python -m ops rollout``: ``status`` (each model version's weight and health over a window), ``promote``
and ``rollback`` (the model config edit, shown as a diff and written unless ``--dry-run``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ops.rollout.config_edit import ConfigEdit, promote, read_config, rollback
from ops.rollout.summary import (
    RolloutError,
    VersionStats,
    model_versions,
    read_emf_lines,
    rollout_rows,
    rollout_table,
    stats_from_emf,
)
from ops.targets import LOCAL_STATE_FILE

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
DEFAULT_CONFIG: Final[Path] = REPO_ROOT / "functions" / "models.json"
# Where `make local` tees the router's and the shadow worker's EMF documents: metrics.jsonl in its state
# directory (local/log_subscriptions.py writes it there).
LOCAL_METRICS_FILE: Final[Path] = LOCAL_STATE_FILE.parent / "metrics.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True)
    status = actions.add_parser("status", help="each model version's weight, requests, 5xx rate, p99 and shadow")
    where = status.add_mutually_exclusive_group()
    where.add_argument("--stage", default=None, help="a deployed stage of infra/stages.json (CloudWatch, its region)")
    where.add_argument("--local", action="store_true", help="the running `make local` (its metrics.jsonl)")
    status.add_argument("--window", type=int, default=60, help="minutes to look back (default 60)")
    status.add_argument("--json", action="store_true", help="print the rows as JSON")
    status.add_argument(
        "--config", default=str(DEFAULT_CONFIG), help="the model config (default functions/models.json)"
    )
    status.add_argument("--metrics-file", default=None, help="with --local: EMF JSON lines to read instead")
    status.set_defaults(rollout=_status)
    for name, help_text in (
        ("promote", "send all of a model's traffic to VERSION"),
        ("rollback", "send all of a model's traffic back to its primary (top-level) version"),
    ):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("model")
        if name == "promote":
            action.add_argument("version")
        action.add_argument("--config", default=str(DEFAULT_CONFIG), help="the model config file to edit")
        action.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
        action.set_defaults(rollout=_edit)


def run(args: argparse.Namespace) -> int:
    if args.action == "status" and args.window < 1:
        print("rollout: --window must be at least 1 minute", file=sys.stderr)
        return 2
    try:
        code: int = args.rollout(args)
    except RolloutError as error:
        print(f"rollout: {error}", file=sys.stderr)
        return 2
    return code


def _edit(args: argparse.Namespace) -> int:
    path = Path(args.config)
    edit: ConfigEdit = (
        promote(path, args.model, args.version) if args.action == "promote" else rollback(path, args.model)
    )
    if not edit.diff:
        print(f"{path}: {args.model}'s traffic is already so; nothing to change")
        return 0
    print(edit.diff, end="")
    if args.dry_run:
        print("(dry run: nothing written)")
        return 0
    path.write_text(edit.after, encoding="utf-8")
    print(f"wrote {path}; deploy it (the router's canary rolls a bad change back) or restart `make local`")
    return 0


def _status(args: argparse.Namespace) -> int:
    _, document = read_config(Path(args.config))
    plans = model_versions(document)
    if args.stage:
        stats, where = _deployed_stats(args.stage, plans, args.window)
    else:
        stats, where = _local_stats(args.metrics_file, args.window)
    rows = rollout_rows(plans, stats)
    if args.json:
        print(json.dumps({"where": where, "window_minutes": args.window, "versions": rows}, indent=2))
    else:
        print(rollout_table(rows, title=f"{where}, last {args.window} min"))
    return 0


def _local_stats(metrics_file: str | None, window: int) -> tuple[dict[tuple[str, str], VersionStats], str]:
    path = LOCAL_METRICS_FILE if metrics_file is None else Path(metrics_file)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise RolloutError(f"{path}: no metrics yet (start `make local` and send requests)") from None
    since_ms = int((time.time() - window * 60) * 1000)
    return stats_from_emf(read_emf_lines(lines), since_ms=since_ms), f"local ({path})"


def _deployed_stats(stage: str, plans: Any, window: int) -> tuple[dict[tuple[str, str], VersionStats], str]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    from infra.config.loader import load_stage_config
    from infra.config.types import StageConfigError
    from ops.rollout.cloudwatch import cloudwatch_stats

    try:
        region = load_stage_config(stage).region
    except StageConfigError as error:
        raise RolloutError(str(error)) from None
    end = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        client = boto3.client("cloudwatch", region_name=region)
        return cloudwatch_stats(client, plans, end=end, window_minutes=window), f"stage {stage} ({region})"
    except NoCredentialsError:
        raise RolloutError(
            "no AWS credentials found (the default chain: AWS_PROFILE, environment, SSO, instance role); "
            "sign in, or use --local"
        ) from None
    except (ClientError, BotoCoreError) as error:
        raise RolloutError(f"CloudWatch GetMetricData in {region} failed: {error}") from None
