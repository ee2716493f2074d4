"""Drift statistics, pure Python (the drift Lambda ships without numpy or scipy): baselines, PSI and KS.

A feature is one column of a tensor: ``input[2]`` is the third column of iris's ``input`` ([-1, 4]); a tensor
of one value per row (``label``, [-1]) is a feature under its own name. Integer, boolean and bytes tensors are
categorical (a distribution over the values seen); floating point ones are numeric (quantile bins and a sample
for the two-sample Kolmogorov-Smirnov test).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

BASELINE_FORMAT: Final[int] = 1
DEFAULT_BINS: Final[int] = 10
# KS compares against this many reference values at most: enough for a p-value far below 0.01 on a real shift,
# small enough that every baseline of a 64-feature model stays a few hundred KB.
MAX_SAMPLE: Final[int] = 1000
# A bin with no values on one side makes ln(a/e) infinite; proportions are floored at 1e-4 (under one value in
# the 2,000 a window of a day usually holds), so one empty 10% bin alone adds about 0.69.
PSI_EPSILON: Final[float] = 1e-4
# Numeric values are compared at 6 decimals on both sides, the baseline's reference data and the captured window
# alike: the stored cuts are then the cuts the proportions were counted with, and a float32 probability of 1e-8 on
# one CPU and 3e-8 on another is the same 0.0 (setosa's probabilities[2] straddled an unrounded cut otherwise).
DECIMALS: Final[int] = 6
NUMERIC_DATATYPES: Final[frozenset[str]] = frozenset({"FP16", "FP32", "FP64", "BF16"})

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureBaseline:
    """Reference distribution of one feature. Numeric: ``edges`` cut the line into ``len(edges) + 1`` bins
    (a value equal to a cut falls in the lower bin). Categorical: ``categories`` name the bins."""

    kind: Kind
    proportions: tuple[float, ...]
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    sample: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """Values at 6 decimals (``DECIMALS``), as they were counted: the same reference data gives the same
        bytes whatever the CPU's last float32 bits were."""
        shares = rounded(self.proportions)
        if self.kind == "categorical":
            return {"kind": self.kind, "categories": list(self.categories), "proportions": shares}
        return {"kind": self.kind, "edges": rounded(self.edges), "proportions": shares, "sample": rounded(self.sample)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureBaseline:
        kind = data["kind"]
        if kind == "categorical":
            return cls(kind, tuple(data["proportions"]), categories=tuple(data["categories"]))
        if kind != "numeric":
            raise ValueError(f"unknown feature kind {kind!r}")
        return cls(kind, tuple(data["proportions"]), edges=tuple(data["edges"]), sample=tuple(data["sample"]))

    def bin_counts(self, values: Sequence[float | str]) -> list[int]:
        """How many values fall in each bin; a category the baseline never saw counts in an extra last bin."""
        if self.kind == "categorical":
            index = {category: i for i, category in enumerate(self.categories)}
            counts = [0] * (len(self.categories) + 1)
            for value in values:
                counts[index.get(category_of(value), len(self.categories))] += 1
            return counts
        counts = [0] * (len(self.edges) + 1)
        for value in values:
            counts[bisect_left(self.edges, quantize(value))] += 1
        return counts


@dataclass(frozen=True)
class Baseline:
    """A model's reference statistics: its input features and its outputs, by feature name."""

    model: str
    features: Mapping[str, FeatureBaseline]
    outputs: Mapping[str, FeatureBaseline]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "model": self.model,
            "features": {name: feature.to_json() for name, feature in self.features.items()},
            "outputs": {name: feature.to_json() for name, feature in self.outputs.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Baseline:
        if data.get("format") != BASELINE_FORMAT:
            raise ValueError(f"baseline format {data.get('format')!r} is not {BASELINE_FORMAT}")
        return cls(
            model=str(data["model"]),
            features={name: FeatureBaseline.from_json(value) for name, value in data["features"].items()},
            outputs={name: FeatureBaseline.from_json(value) for name, value in data["outputs"].items()},
        )


def quantize(value: float | str) -> float:
    return round(float(value), DECIMALS)


def rounded(values: Iterable[float]) -> list[float]:
    return [quantize(value) for value in values]


def category_of(value: float | str) -> str:
    """A categorical value's name: ``2`` and ``2.0`` are the same class."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def kind_of(datatype: str) -> Kind:
    return "numeric" if datatype in NUMERIC_DATATYPES else "categorical"


def quantile_edges(values: Sequence[float], bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Cuts at the 1/bins .. (bins-1)/bins quantiles, each placed halfway to the next distinct value so that
    tied reference values (iris is measured to 0.1 cm) stay in one bin and a little noise does not move them.
    Ties merge cuts, so skewed data gets fewer bins; a constant feature gets one cut at its value."""
    ordered = sorted(float(value) for value in values)
    if not ordered:
        raise ValueError("no reference values")
    distinct = sorted(set(ordered))
    cuts: list[float] = []
    for k in range(1, bins):
        at = ordered[min(len(ordered) - 1, math.ceil(k * len(ordered) / bins) - 1)]
        position = distinct.index(at)
        if position + 1 < len(distinct):
            cut = (at + distinct[position + 1]) / 2
            if not cuts or cut > cuts[-1]:
                cuts.append(cut)
    return tuple(cuts) if cuts else (ordered[0],)


def evenly_spaced(values: Sequence[float], size: int = MAX_SAMPLE) -> tuple[float, ...]:
    """At most ``size`` values at evenly spaced ranks of the sorted data: deterministic, same distribution."""
    ordered = sorted(float(value) for value in values)
    if len(ordered) <= size:
        return tuple(ordered)
    return tuple(ordered[(i * (len(ordered) - 1)) // (size - 1)] for i in range(size))


def proportions(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(count / total for count in counts) if total else tuple(0.0 for _ in counts)


def feature_baseline(kind: Kind, values: Sequence[float | str], bins: int = DEFAULT_BINS) -> FeatureBaseline:
    if not values:
        raise ValueError("no reference values")
    if kind == "categorical":
        counts = Counter(category_of(value) for value in values)
        categories = tuple(sorted(counts, key=lambda name: (len(name), name)))
        return FeatureBaseline(kind, proportions([counts[c] for c in categories]), categories=categories)
    numbers = rounded(float(value) for value in values)
    # A cut halfway between two values may round onto one of them, or onto the next cut: kept once, as stored.
    shell = FeatureBaseline(kind, (), edges=tuple(dict.fromkeys(rounded(quantile_edges(numbers, bins)))))
    return FeatureBaseline(
        kind, proportions(shell.bin_counts(numbers)), edges=shell.edges, sample=evenly_spaced(numbers)
    )


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = PSI_EPSILON) -> float:
    """Population stability index: sum of (a - e) * ln(a / e) over the bins, proportions floored at epsilon."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} expected bins but {len(actual)} actual")
    total = 0.0
    for reference, observed in zip(expected, actual, strict=True):
        e, a = max(reference, epsilon), max(observed, epsilon)
        total += (a - e) * math.log(a / e)
    return total


def ks_statistic(first: Sequence[float], second: Sequence[float]) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs, ties counted
    whole on both sides (as scipy.stats.ks_2samp does)."""
    a, b = sorted(first), sorted(second)
    if not a or not b:
        raise ValueError("KS needs two non-empty samples")
    i = j = 0
    largest = 0.0
    while i < len(a) and j < len(b):
        value = min(a[i], b[j])
        while i < len(a) and a[i] == value:
            i += 1
        while j < len(b) and b[j] == value:
            j += 1
        largest = max(largest, abs(i / len(a) - j / len(b)))
    return largest


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution: 2 * sum (-1)^(k-1) exp(-2 k^2 x^2)."""
    if x < 0.2:  # the series converges slowly here, and the value is 1 to within 1e-9
        return 1.0
    total = 0.0
    for k in range(1, 101):
        total += (1.0 if k % 2 else -1.0) * math.exp(-2.0 * k * k * x * x)
    return min(1.0, max(0.0, 2.0 * total))


def ks_p_value(statistic: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value with Stephens' small-sample correction (Numerical Recipes 14.3), within
    0.01 of scipy.stats.ks_2samp(method="asymp") from 20 values a side (tests/unit/test_drift_statistics.py)."""
    effective = math.sqrt(n * m / (n + m))
    return kolmogorov_sf((effective + 0.12 + 0.11 / effective) * statistic)


def feature_columns(shape: Sequence[int], data: Sequence[Any]) -> list[list[Any]]:
    """A tensor's values by column: rows are the first dimension, columns the rest flattened row-major."""
    if not shape:
        return [list(data)]
    rows = shape[0]
    width = math.prod(shape[1:]) if len(shape) > 1 else 1
    if rows * width != len(data):
        raise ValueError(f"shape {list(shape)} does not hold {len(data)} values")
    return [[data[row * width + column] for row in range(rows)] for column in range(width)]


def feature_names(name: str, shape: Sequence[int], width: int) -> list[str]:
    """``label`` for a tensor of one value per row; ``input[0]`` .. ``input[3]`` for the columns of [-1, 4]."""
    if len(shape) <= 1:
        return [name]
    return [f"{name}[{column}]" for column in range(width)]


def tensor_features(tensors: Iterable[tuple[str, Sequence[int], Sequence[Any]]]) -> dict[str, list[Any]]:
    """Values by feature name over (name, shape, flat data) tensors, as captured or as a reference set."""
    features: dict[str, list[Any]] = {}
    for name, shape, data in tensors:
        columns = feature_columns(shape, data)
        for feature, column in zip(feature_names(name, shape, len(columns)), columns, strict=True):
            features.setdefault(feature, []).extend(column)
    return features


Tensor = tuple[str, Sequence[int], Sequence[Any]]


def build_baseline(
    model: str,
    inputs: Iterable[Tensor],
    outputs: Iterable[Tensor],
    datatypes: Mapping[str, str],
    bins: int = DEFAULT_BINS,
) -> Baseline:
    """A baseline from reference tensors (name, shape, flat data); ``datatypes`` by tensor name sets each
    feature's kind."""

    def described(tensors: Iterable[Tensor]) -> dict[str, FeatureBaseline]:
        kinds: dict[str, Kind] = {}
        listed = list(tensors)
        for name, shape, data in listed:
            columns = feature_columns(shape, data)
            for feature in feature_names(name, shape, len(columns)):
                kinds[feature] = kind_of(datatypes[name])
        values = tensor_features(listed)
        return {feature: feature_baseline(kinds[feature], values[feature], bins) for feature in values}

    return Baseline(model, described(inputs), described(outputs))
