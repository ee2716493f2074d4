"""``python -m ops baseline`` and ``python -m ops drift --local``.

python -m ops baseline --model iris --data iris.csv [--out PATH]   # default: <artifact dir>/baseline.json
python -m ops drift --local [--json] [--model iris] [--days 1]     # what `make local` captured, up to today
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from functions.adapters.capture_store import DirectoryCaptureStore
from functions.adapters.drift_files import DirectoryReportWriter, load_file_baselines
from functions.config.config_reader import ConfigError
from functions.config.models import load_models_config
from functions.handlers.drift.app import DriftJob, DriftSettings, summary
from local.capture import local_capture_dir
from ops.drift.baseline import REPO_ROOT, BaselineError, baseline_path, make_baseline, read_reference, write_baseline

DEFAULT_CONFIG = REPO_ROOT / "functions" / "models.json"


def add_baseline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a model of the config")
    parser.add_argument("--data", required=True, type=Path, help="CSV of the input's columns, or OIP JSON lines")
    parser.add_argument("--out", type=Path, help="default: baseline.json next to the model's artifact")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the model config")


def run_baseline(args: argparse.Namespace) -> int:
    try:
        model = load_models_config(args.config).model(args.model)
        if model is None:
            raise BaselineError(f"no model {args.model!r} in {args.config}")
        if model.artifact is None:
            raise BaselineError(f"model {model.name!r} has no artifact to run for its outputs")
        out = args.out or baseline_path(model)
        baseline = make_baseline(model, REPO_ROOT / model.artifact, read_reference(model, args.data))
    except (BaselineError, ConfigError) as error:
        print(f"baseline: {error}", file=sys.stderr)
        return 2
    write_baseline(baseline, out)
    print(f"wrote {out}: {len(baseline.features)} input features, {len(baseline.outputs)} outputs")
    return 0


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--local", action="store_true", required=True, help="what a `make local` run captured")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--model", action="append", default=[], help="only this model (repeatable)")
    parser.add_argument("--days", type=int, default=1, help="the window: this many days up to today (default 1)")
    parser.add_argument("--state-dir", type=Path, default=local_capture_dir(), help="default: .local/")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="the model config")


def run_drift(args: argparse.Namespace) -> int:
    if args.days < 1:
        print("drift: --days must be at least 1", file=sys.stderr)
        return 2
    try:
        config = load_models_config(args.config)
        unknown = [name for name in args.model if name not in {m.name for m in config.models}]
        if unknown:
            raise BaselineError(f"no model(s) {unknown} in {args.config}")
        paths = {m.name: baseline_path(m) for m in config.models if m.artifact is not None}
        baselines = load_file_baselines({name: path for name, path in paths.items() if path.is_file()})
    except (BaselineError, ConfigError) as error:
        print(f"drift: {error}", file=sys.stderr)
        return 2
    job = DriftJob(
        store=DirectoryCaptureStore(args.state_dir),
        baselines=baselines,
        settings=DriftSettings(),
        write_report=DirectoryReportWriter(args.state_dir),
        emit=lambda line: None,
    )
    end = datetime.now(UTC).date()
    results = job.run(end - timedelta(days=args.days - 1), end, int(time.time() * 1000), tuple(args.model))
    if args.json:
        print(json.dumps(summary(results), indent=2))
        return 0
    for model, (drift, where) in results.items():
        if not drift.records:
            print(f"{model}: no captures in {args.state_dir / 'capture'}")
            continue
        drifted = [name for name, f in (*drift.features.items(), *drift.outputs.items()) if f.drifted]
        print(f"{model}: {drift.records} captured requests, max feature PSI {drift.max_feature_psi:.3f}, "
              f"drifted: {', '.join(drifted) or 'nothing'}; report {where}")  # fmt: skip
    return 0
