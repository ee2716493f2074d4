"""One model's drift over a captured window: each feature and output against the model's baseline.

``drifted`` when the PSI is over its threshold (0.2 by default: the rule of thumb reads under 0.1 as stable,
0.1-0.2 as a moderate shift and over 0.2 as a significant one) or, for a numeric feature with enough captured
values, when the two-sample KS test's p-value is under its threshold (0.01 by default).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.domain.drift import (
    Baseline,
    FeatureBaseline,
    ks_p_value,
    ks_statistic,
    proportions,
    psi,
    quantize,
    tensor_features,
)

DEFAULT_PSI_THRESHOLD: Final[float] = 0.2
DEFAULT_KS_P_VALUE: Final[float] = 0.01
# Under this many captured values the KS test is not run: a p-value from a handful says little either way.
DEFAULT_KS_MIN_SAMPLES: Final[int] = 100


@dataclass(frozen=True)
class DriftThresholds:
    psi: float = DEFAULT_PSI_THRESHOLD
    ks_p_value: float = DEFAULT_KS_P_VALUE
    ks_min_samples: int = DEFAULT_KS_MIN_SAMPLES

    def __post_init__(self) -> None:
        if self.psi <= 0:
            raise ValueError(f"psi threshold {self.psi} must be above 0")
        if not 0 < self.ks_p_value < 1:
            raise ValueError(f"KS p-value threshold {self.ks_p_value} must be in (0, 1)")
        if self.ks_min_samples < 1:
            raise ValueError(f"KS minimum samples {self.ks_min_samples} must be at least 1")


@dataclass(frozen=True)
class FeatureDrift:
    """A feature's window against its baseline; ``labels`` name the bins for the report."""

    samples: int
    psi: float
    drifted: bool
    labels: tuple[str, ...]
    baseline: tuple[float, ...]
    window: tuple[float, ...]
    ks_statistic: float | None = None
    ks_p_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = {"psi": round(self.psi, 6), "drifted": self.drifted, "samples": self.samples}
        if self.ks_statistic is not None and self.ks_p_value is not None:
            summary["ks_statistic"] = round(self.ks_statistic, 6)
            summary["ks_p_value"] = round(self.ks_p_value, 6)
        return summary


@dataclass(frozen=True)
class ModelDrift:
    model: str
    records: int
    features: Mapping[str, FeatureDrift]
    outputs: Mapping[str, FeatureDrift]

    @property
    def max_feature_psi(self) -> float:
        return max((feature.psi for feature in self.features.values()), default=0.0)

    @property
    def drifted(self) -> bool:
        return any(f.drifted for f in (*self.features.values(), *self.outputs.values()))

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "features": {name: feature.to_json() for name, feature in self.features.items()},
            "outputs": {name: output.to_json() for name, output in self.outputs.items()},
        }


def bin_labels(reference: FeatureBaseline) -> tuple[str, ...]:
    if reference.kind == "categorical":
        return (*reference.categories, "other")
    edges = reference.edges
    lows = ("-inf", *(f"{edge:g}" for edge in edges))
    highs = (*(f"{edge:g}" for edge in edges), "inf")
    return tuple(f"({low}, {high}]" for low, high in zip(lows, highs, strict=True))


def compare(reference: FeatureBaseline, values: list[Any], thresholds: DriftThresholds) -> FeatureDrift:
    window = proportions(reference.bin_counts(values))
    expected = (*reference.proportions, 0.0) if reference.kind == "categorical" else reference.proportions
    index = psi(expected, window)
    statistic = p_value = None
    if reference.kind == "numeric" and reference.sample and len(values) >= thresholds.ks_min_samples:
        numbers = [quantize(value) for value in values]
        statistic = ks_statistic(reference.sample, numbers)
        p_value = ks_p_value(statistic, len(reference.sample), len(numbers))
    drifted = index > thresholds.psi or (p_value is not None and p_value < thresholds.ks_p_value)
    return FeatureDrift(len(values), index, drifted, bin_labels(reference), expected, window, statistic, p_value)


def record_tensors(record: Mapping[str, Any], part: str) -> Iterable[tuple[str, list[int], list[Any]]]:
    for name, tensor in (record.get(part) or {}).items():
        yield name, list(tensor["shape"]), list(tensor["data"])


def evaluate(baseline: Baseline, records: Iterable[Mapping[str, Any]], thresholds: DriftThresholds) -> ModelDrift:
    """Every feature and output the window holds values for; one the capture leaves out is not reported."""
    inputs: dict[str, list[Any]] = {}
    outputs: dict[str, list[Any]] = {}
    count = 0
    for record in records:
        count += 1
        for name, values in tensor_features(record_tensors(record, "inputs")).items():
            inputs.setdefault(name, []).extend(values)
        for name, values in tensor_features(record_tensors(record, "outputs")).items():
            outputs.setdefault(name, []).extend(values)
    return ModelDrift(
        model=baseline.model,
        records=count,
        features={n: compare(ref, inputs[n], thresholds) for n, ref in baseline.features.items() if inputs.get(n)},
        outputs={n: compare(ref, outputs[n], thresholds) for n, ref in baseline.outputs.items() if outputs.get(n)},
    )
