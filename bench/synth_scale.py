"""``python -m bench.synth_scale``: what synth costs as a stage grows to hundreds of models.

For 1, 50 and 200 generated models (:mod:`bench.model_fleet`: iris under other names, a serverless and an
async endpoint each) and each stage, a fresh process builds the app, synthesizes it (cdk-nag over every stack
included) and checks CloudFormation's limits, as ``cdk synth`` would. Printed per run: the stacks, the
platform's resources, the largest model stack's resources and template size, and the seconds spent loading
the CDK, building the constructs and synthesizing. Synth cost should grow linearly with the model count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SIZES = (1, 50, 200)
STAGES = ("dev", "prod")


def measure(count: int, stage: str) -> dict[str, Any]:
    """Build and synthesize ``count`` generated models in ``stage`` in this process; return the figures."""
    started = time.perf_counter()
    from bench.model_fleet import write_model_fleet
    from functions.config.models import load_models_config
    from infra.app import build_app, new_app
    from infra.stack_limits import check_stack_limits, stack_sizes

    loaded = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="synth-scale-") as directory:
        fleet = write_model_fleet(Path(directory) / "fleet", count)
        app = new_app(stage=stage, outdir=str(Path(directory) / "cdk.out"))
        stacks = build_app(app, models=load_models_config(fleet.models_path), stages_path=fleet.stages_path)
        built = time.perf_counter()
        assembly = app.synth()
        sizes = stack_sizes(assembly)
        check_stack_limits(sizes, platform_stack=stacks.platform.stack_name)
        synthesized = time.perf_counter()
    platform = next(size for size in sizes if size.stack_name == stacks.platform.stack_name)
    models = [size for size in sizes if size.stack_name != stacks.platform.stack_name]
    return {
        "models": count,
        "stage": stage,
        "stacks": len(sizes),
        "platform_resources": platform.resources,
        "largest_model_stack_resources": max(size.resources for size in models),
        "largest_template_kb": round(max(size.template_bytes for size in sizes) / 1024, 1),
        "total_resources": sum(size.resources for size in sizes),
        "load_s": round(loaded - started, 2),
        "build_s": round(built - loaded, 2),
        "synth_s": round(synthesized - built, 2),
    }


def run_fresh(count: int, stage: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "bench.synth_scale", "--one", str(count), "--stage", stage],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if result.returncode != 0:
        raise SystemExit(f"synth of {count} models ({stage}) failed:\n{result.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.synth_scale", description=__doc__)
    parser.add_argument("--one", type=int, help="measure this many models in this process and print JSON")
    parser.add_argument("--stage", default="prod", choices=STAGES)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="model counts (default: 1,50,200)")
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.stage)))
        return
    print("synth cost by model count (fresh process each; synth includes cdk-nag and the limit check)")
    header = f"{'stage':<6}{'models':>7}{'stacks':>8}{'platform':>10}{'per model':>11}{'largest KB':>12}"
    # The last column is the marginal cost: seconds per model added since the previous (smaller) run.
    print(f"{header}{'load s':>8}{'build s':>9}{'synth s':>9}{'total s':>9}{'s/added model':>15}")
    for stage in STAGES:
        previous: tuple[int, float] | None = None
        for count in (int(size) for size in args.sizes.split(",")):
            row = run_fresh(count, stage)
            total = row["load_s"] + row["build_s"] + row["synth_s"]
            marginal = "" if previous is None else f"{(total - previous[1]) / (count - previous[0]):.3f}"
            previous = (count, total)
            print(
                f"{stage:<6}{count:>7}{row['stacks']:>8}{row['platform_resources']:>10}"
                f"{row['largest_model_stack_resources']:>11}{row['largest_template_kb']:>12}"
                f"{row['load_s']:>8}{row['build_s']:>9}{row['synth_s']:>9}{total:>9.1f}{marginal:>15}"
            )


if __name__ == "__main__":
    main()
