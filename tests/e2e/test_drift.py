"""Drift over real HTTP against the local stack, which captures every iris request (CAPTURE_SAMPLE_RATE=1) into
a temporary capture directory; ``python -m ops drift --local --json`` then compares the day's captures with the
shipped baseline (built from iris's training data).

- 2,000 rows drawn from the baseline's distribution (iris's training rows resampled with 0.01 of jitter) drift
  nowhere: no input feature and no output is marked drifted.
- The same draw with input[2] (petal length) shifted by +2.0 marks input[2] drifted, and no other input.

20 rows a request: under capture.max_rows (100), so every row is captured.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris

from local.stack import start_local_stack

ROWS = 2_000
ROWS_PER_REQUEST = 20
JITTER = 0.01
SHIFTED_COLUMN = 2
SHIFT = 2.0
REPO_ROOT = Path(__file__).resolve().parents[2]


def reference_draw(seed: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """ROWS rows resampled from iris's training rows, each value jittered a little and kept at two decimals."""
    rng = np.random.default_rng(seed)
    features = load_iris(return_X_y=True)[0]
    rows = features[rng.integers(0, len(features), ROWS)] + rng.normal(0.0, JITTER, (ROWS, features.shape[1]))
    return np.round(np.clip(rows, 0.0, None), 2)


def captured_drift(rows: np.ndarray[Any, np.dtype[np.float64]], state_dir: Path) -> dict[str, Any]:
    """Send ``rows`` through a local stack capturing into ``state_dir``; the drift CLI's JSON for iris."""
    stack = start_local_stack(api_port=0, runtime_port=0, async_options=None, capture_dir=state_dir)
    try:
        for start in range(0, len(rows), ROWS_PER_REQUEST):
            batch = rows[start : start + ROWS_PER_REQUEST]
            body = {
                "inputs": [
                    {"name": "input", "shape": list(batch.shape), "datatype": "FP32", "data": batch.ravel().tolist()}
                ]
            }
            request = urllib.request.Request(
                f"{stack.api.url}/v2/models/iris/infer",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 200
        assert stack.subscriptions is not None
        assert stack.subscriptions.wait_idle()
    finally:
        stack.stop()
    completed = subprocess.run(
        [sys.executable, "-m", "ops", "drift", "--local", "--json", "--model", "iris", "--state-dir", str(state_dir)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    result: dict[str, Any] = json.loads(completed.stdout)["models"]["iris"]
    print(json.dumps({name: result[name] for name in ("records", "features", "outputs")}))  # the figures, with -s
    return result


@pytest.fixture(scope="module")
def steady(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return captured_drift(reference_draw(seed=18), tmp_path_factory.mktemp("steady"))


@pytest.fixture(scope="module")
def shifted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    rows = reference_draw(seed=19)
    rows[:, SHIFTED_COLUMN] += SHIFT
    return captured_drift(rows, tmp_path_factory.mktemp("shifted"))


def test_inputs_drawn_from_the_baseline_drift_nowhere(steady: dict[str, Any]) -> None:
    assert steady["records"] == ROWS // ROWS_PER_REQUEST
    assert set(steady["features"]) == {f"input[{column}]" for column in range(4)}
    assert all(feature["samples"] == ROWS for feature in steady["features"].values())
    drifted = [name for group in ("features", "outputs") for name, f in steady[group].items() if f["drifted"]]
    assert drifted == []
    assert set(steady["outputs"]) >= {"label", "probabilities[0]"}


def test_a_shifted_column_and_only_it_drifts(shifted: dict[str, Any]) -> None:
    assert shifted["records"] == ROWS // ROWS_PER_REQUEST
    drifted = sorted(name for name, feature in shifted["features"].items() if feature["drifted"])
    assert drifted == [f"input[{SHIFTED_COLUMN}]"]
    assert shifted["features"][f"input[{SHIFTED_COLUMN}]"]["psi"] > 1.0
    # The answers follow the shifted petal length: prediction drift on every output.
    assert all(output["drifted"] for output in shifted["outputs"].values())
