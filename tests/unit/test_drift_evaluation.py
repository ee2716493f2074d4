"""One model's drift over captured records (the capture record contract) against its baseline."""

from __future__ import annotations

import random
from typing import Any

import pytest

from functions.domain.drift import build_baseline, evenly_spaced
from functions.domain.drift_evaluation import DriftThresholds, evaluate


def reference_rows(rng: random.Random, rows: int) -> list[list[float]]:
    return [[round(rng.gauss(5, 1), 1), round(rng.gauss(3, 0.5), 1)] for _ in range(rows)]


def capture(rows: list[list[float]], labels: list[int]) -> dict[str, Any]:
    return {
        "capture": 1,
        "model": "m",
        "version": "1",
        "timestamp": 1.0,
        "inputs": {"x": {"shape": [len(rows), 2], "data": [value for row in rows for value in row]}},
        "outputs": {"label": {"shape": [len(labels)], "data": labels}},
    }


def baseline_of(rows: list[list[float]], labels: list[int]) -> Any:
    flat = [value for row in rows for value in row]
    return build_baseline(
        "m", [("x", [len(rows), 2], flat)], [("label", [len(labels)], labels)], {"x": "FP32", "label": "INT64"}
    )


def test_a_window_from_the_reference_distribution_has_not_drifted_and_a_shifted_column_has() -> None:
    rng = random.Random(3)
    rows = reference_rows(rng, 500)
    labels = [rng.randrange(3) for _ in rows]
    baseline = baseline_of(rows, labels)
    same = [capture([[v + rng.gauss(0, 0.01) for v in rng.choice(rows)] for _ in range(4)], [0, 1, 2, 1])
            for _ in range(500)]  # fmt: skip
    result = evaluate(baseline, same, DriftThresholds())
    assert result.records == 500
    assert not result.drifted, result.to_json()
    assert result.features["x[0]"].samples == 2000
    assert result.features["x[0]"].ks_p_value is not None
    assert result.features["x[0]"].ks_p_value > 0.01

    shifted = [capture([[row[0], row[1] + 1.0] for row in record_rows(record)], [0] * 4) for record in same]
    drift = evaluate(baseline, shifted, DriftThresholds())
    assert not drift.features["x[0]"].drifted
    assert drift.features["x[1]"].drifted
    assert drift.features["x[1]"].psi > 0.2
    assert drift.outputs["label"].drifted
    assert drift.max_feature_psi == drift.features["x[1]"].psi
    summary = drift.to_json()
    assert summary["features"]["x[1]"]["drifted"] is True
    assert set(summary["features"]["x[1]"]) == {"psi", "drifted", "samples", "ks_statistic", "ks_p_value"}
    assert set(summary["outputs"]["label"]) == {"psi", "drifted", "samples"}


def record_rows(record: dict[str, Any]) -> list[list[float]]:
    data = record["inputs"]["x"]["data"]
    return [data[i : i + 2] for i in range(0, len(data), 2)]


def test_ks_alone_flags_a_shift_the_bins_miss_once_there_are_enough_values() -> None:
    rng = random.Random(5)
    rows = [[rng.gauss(0, 1), rng.gauss(0, 1)] for _ in range(1000)]
    baseline = baseline_of(rows, [0] * 1000)
    # Squeezed toward the median: the same bins either side of it, a very different CDF.
    squeezed = [capture([[rng.gauss(0, 0.3), rng.gauss(0, 1)] for _ in range(10)], [0] * 10) for _ in range(100)]
    lenient = DriftThresholds(psi=100.0)
    assert evaluate(baseline, squeezed, lenient).features["x[0]"].drifted
    assert not evaluate(baseline, squeezed, DriftThresholds(psi=100.0, ks_min_samples=5000)).features["x[0]"].drifted


def test_features_the_capture_left_out_are_not_reported_and_an_empty_window_reports_nothing() -> None:
    rng = random.Random(1)
    rows = reference_rows(rng, 50)
    baseline = baseline_of(rows, [1] * 50)
    inputs_only = capture(rows[:3], [1, 1, 1])
    del inputs_only["outputs"]
    result = evaluate(baseline, [inputs_only], DriftThresholds())
    assert set(result.features) == {"x[0]", "x[1]"}
    assert result.outputs == {}
    assert result.features["x[0]"].ks_p_value is None  # 3 values: under the KS minimum
    empty = evaluate(baseline, [], DriftThresholds())
    assert empty.to_json() == {"records": 0, "features": {}, "outputs": {}}
    assert empty.max_feature_psi == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"psi": 0.0}, "psi threshold"), ({"ks_p_value": 1.0}, "KS p-value"), ({"ks_min_samples": 0}, "KS minimum")],
)
def test_thresholds_are_checked(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftThresholds(**kwargs)


def test_the_ks_sample_keeps_evenly_spaced_ranks() -> None:
    sample = evenly_spaced([float(i) for i in range(10_001)], size=1000)
    assert len(sample) == 1000
    assert sample[0] == 0.0
    assert sample[-1] == 10_000.0
