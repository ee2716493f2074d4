"""The drift statistics: quantile bins, PSI, KS against scipy, baselines round-tripping through JSON."""

from __future__ import annotations

import json
import math
import random

import pytest
from scipy import stats

from functions.domain.drift import (
    PSI_EPSILON,
    Baseline,
    FeatureBaseline,
    build_baseline,
    feature_baseline,
    feature_columns,
    ks_p_value,
    ks_statistic,
    psi,
    quantile_edges,
    tensor_features,
)
from functions.domain.drift_evaluation import DriftThresholds, compare


def test_psi_of_identical_distributions_is_zero_and_grows_with_the_shift() -> None:
    even = [0.1] * 10
    assert psi(even, even) == 0.0
    small = psi(even, [0.12, 0.08] * 5)
    large = psi(even, [0.2, 0.0] * 5)
    assert 0 < small < 0.1 < 0.2 < large


def test_psi_floors_an_empty_bin_at_epsilon_instead_of_dividing_by_zero() -> None:
    value = psi([0.5, 0.5], [1.0, 0.0])
    expected = (1.0 - 0.5) * math.log(1.0 / 0.5) + (PSI_EPSILON - 0.5) * math.log(PSI_EPSILON / 0.5)
    assert value == pytest.approx(expected)


def test_psi_refuses_bins_that_do_not_line_up() -> None:
    with pytest.raises(ValueError, match="2 expected bins but 3 actual"):
        psi([0.5, 0.5], [0.3, 0.3, 0.4])


@pytest.mark.parametrize(("n", "m", "shift"), [(20, 25, 0.0), (150, 2000, 0.0), (1000, 2000, 0.1), (300, 40, 0.8),
                                                (500, 500, 0.3), (60, 60, 1.5)])  # fmt: skip
def test_ks_matches_scipy(n: int, m: int, shift: float) -> None:
    rng = random.Random(n * 7 + m)
    first = [round(rng.gauss(0, 1), 1) for _ in range(n)]  # rounded: ties, as in measured data
    second = [rng.gauss(shift, 1) for _ in range(m)]
    reference = stats.ks_2samp(first, second, method="asymp")
    statistic = ks_statistic(first, second)
    assert statistic == pytest.approx(reference.statistic, abs=1e-12)
    assert ks_p_value(statistic, n, m) == pytest.approx(reference.pvalue, abs=0.01)


def test_ks_needs_two_samples() -> None:
    with pytest.raises(ValueError, match="two non-empty samples"):
        ks_statistic([], [1.0])


def test_quantile_edges_keep_ties_in_one_bin_and_merge_cuts() -> None:
    values = [1.4] * 50 + [1.5] * 30 + [4.0] * 20
    edges = quantile_edges(values, bins=10)
    assert edges == (pytest.approx(1.45), pytest.approx(2.75))
    # A little noise on a tied value does not move it across a cut.
    reference = feature_baseline("numeric", values)
    assert reference.bin_counts([1.41, 1.39, 1.52, 3.9]) == [2, 1, 1]
    assert reference.proportions == (0.5, 0.3, 0.2)


def test_a_constant_feature_gets_one_cut_so_a_shift_up_still_shows() -> None:
    reference = feature_baseline("numeric", [0.0] * 100)
    assert reference.edges == (0.0,)
    assert reference.bin_counts([0.0, 3.0]) == [1, 1]


def test_categorical_baseline_counts_unseen_categories_apart() -> None:
    reference = feature_baseline("categorical", [0, 1, 1, 2, 10])
    assert reference.categories == ("0", "1", "2", "10")
    assert reference.proportions == (0.2, 0.4, 0.2, 0.2)
    assert reference.bin_counts([1, 1.0, 7]) == [0, 2, 0, 0, 1]


def test_feature_columns_split_rows_and_refuse_a_wrong_shape() -> None:
    assert feature_columns([2, 3], [1, 2, 3, 4, 5, 6]) == [[1, 4], [2, 5], [3, 6]]
    assert feature_columns([3], [1, 2, 3]) == [[1, 2, 3]]
    with pytest.raises(ValueError, match=r"shape \[2, 3\] does not hold 5 values"):
        feature_columns([2, 3], [1, 2, 3, 4, 5])


def test_tensor_features_name_columns_and_concatenate_records() -> None:
    features = tensor_features([("input", [1, 2], [1.0, 2.0]), ("input", [1, 2], [3.0, 4.0]), ("label", [1], [2])])
    assert features == {"input[0]": [1.0, 3.0], "input[1]": [2.0, 4.0], "label": [2]}


def test_baseline_round_trips_through_json_and_refuses_another_format() -> None:
    baseline = build_baseline(
        "m",
        [("x", [4, 2], [1.0, 5.0, 2.0, 6.0, 3.0, 7.0, 4.0, 8.0])],
        [("label", [4], [0, 1, 1, 0])],
        {"x": "FP32", "label": "INT64"},
    )
    assert set(baseline.features) == {"x[0]", "x[1]"}
    assert baseline.outputs["label"].kind == "categorical"
    assert baseline.features["x[0]"].sample == (1.0, 2.0, 3.0, 4.0)
    assert Baseline.from_json(baseline.to_json()) == baseline
    with pytest.raises(ValueError, match="baseline format 2 is not 1"):
        Baseline.from_json({**baseline.to_json(), "format": 2})
    with pytest.raises(ValueError, match="unknown feature kind 'ordinal'"):
        FeatureBaseline.from_json({"kind": "ordinal", "proportions": []})


def test_a_feature_without_reference_values_is_refused() -> None:
    with pytest.raises(ValueError, match="no reference values"):
        feature_baseline("numeric", [])


def test_values_under_a_millionth_compare_at_six_decimals_on_both_sides() -> None:
    """A third of the reference sits at float32 noise around 0 (setosa's probabilities[2]: 1e-9 .. 4e-7); the
    window's noise differs (another CPU, another jitter). The stored baseline's cuts are the ones it was counted
    with, and the same draw with other noise is no drift, by PSI or KS."""
    reference = [1e-9 * (i + 1) for i in range(400)] + [0.1 + 0.001 * i for i in range(800)]
    window = [3e-8 + 1e-10 * i for i in range(400)] + [0.1 + 0.001 * i + 0.0004 for i in range(800)]
    stored = FeatureBaseline.from_json(json.loads(json.dumps(feature_baseline("numeric", reference).to_json())))
    assert list(stored.edges) == sorted(set(stored.edges))
    assert stored.proportions[0] == pytest.approx(1 / 3)
    result = compare(stored, window, DriftThresholds())
    assert result.psi < 0.01
    assert result.ks_p_value is not None
    assert result.ks_p_value > 0.5
    assert not result.drifted
