"""`make local` passes both ports and the model config to `python -m local`: the runtime's 8080 is often taken."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("overrides", "ports"),
    [
        ([], "--port 3000 --runtime-port 8080 --config functions/models.json"),
        (
            ["PORT=3456", "RUNTIME_PORT=9123", "CONFIG=local/models.rollout.json"],
            "--port 3456 --runtime-port 9123 --config local/models.rollout.json",
        ),
    ],
)
def test_make_local_passes_the_api_and_runtime_ports(overrides: list[str], ports: str) -> None:
    make = shutil.which("make")
    assert make is not None, "make is required (it is how users start local mode)"
    # Under `make test` this make is nested: without its parent's MAKEFLAGS/MAKELEVEL it prints only recipes.
    environment = {key: value for key, value in os.environ.items() if key not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    dry_run = subprocess.run(
        [make, "--no-print-directory", "-n", "local", *overrides],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert dry_run.stdout.splitlines()[-1] == f".venv/bin/python -m local {ports}"
