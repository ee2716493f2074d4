"""The rollout view, pure: each model's versions and weights from the model config, and per version, over a
window, requests, server error rate and p99 latency (the router's EMF, by service, model and version) and the
shadow's agreement, errors and p99 (the shadow worker's EMF, service ``inference-router-shadow``)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from functions.config.telemetry import (
    LATENCY_METRIC,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTER_SERVICE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SHADOW_AGREEMENTS_METRIC,
    SHADOW_ERRORS_METRIC,
    SHADOW_LATENCY_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_SERVICE,
    VERSION_DIMENSION,
)


class RolloutError(ValueError):
    """An unknown model or version, or a config or metrics file that cannot be read; the message names it."""


@dataclass(frozen=True)
class VersionPlan:
    """A version as the model config declares it: its traffic weight (percent) or, for a shadow, its sample rate."""

    version: str
    weight: int
    shadow_sample_rate: float | None
    primary: bool


@dataclass
class VersionStats:
    """What one version did over the window (counts summed; p99s by nearest rank, or CloudWatch's own p99)."""

    requests: float = 0.0
    server_errors: float = 0.0
    latency_p99_ms: float | None = None
    shadow_requests: float = 0.0
    shadow_errors: float = 0.0
    shadow_agreement: float | None = None  # share of compared answers that agreed
    shadow_latency_p99_ms: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    shadow_latencies_ms: list[float] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)

    @property
    def error_rate(self) -> float | None:
        return self.server_errors / self.requests if self.requests else None


def model_versions(document: Mapping[str, Any]) -> dict[str, list[VersionPlan]]:
    """Model name -> its versions, the primary (top-level ``version``) first, with weights from ``traffic``
    (absent: all to the primary)."""
    plans: dict[str, list[VersionPlan]] = {}
    for model in document.get("models", []):
        primary = str(model["version"])
        traffic = {str(name): int(weight) for name, weight in model.get("traffic", {primary: 100}).items()}
        entries = [(primary, None)] + [
            (str(entry["version"]), entry.get("shadow")) for entry in model.get("versions", [])
        ]
        plans[str(model["name"])] = [
            VersionPlan(
                version=name,
                weight=traffic.get(name, 0),
                shadow_sample_rate=None if shadow is None else float(shadow["sample_rate"]),
                primary=name == primary,
            )
            for name, shadow in entries
        ]
    return plans


def p99(values: Sequence[float]) -> float | None:
    """Nearest-rank 99th percentile: the smallest value with at least 99% of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.99 * len(ordered)) - 1]


def _values(document: Mapping[str, Any], name: str) -> list[float]:
    value = document.get(name)
    if value is None:
        return []
    return [float(item) for item in value] if isinstance(value, list) else [float(value)]


def _declares(document: Mapping[str, Any], dimensions: list[str]) -> bool:
    directives = document.get("_aws", {}).get("CloudWatchMetrics", [])
    return any(dimensions in directive.get("Dimensions", []) for directive in directives)


def stats_from_emf(documents: Iterable[Mapping[str, Any]], *, since_ms: int) -> dict[tuple[str, str], VersionStats]:
    """(model, version) -> stats, from EMF documents stamped at or after ``since_ms`` that declare the
    [service, model, version] dimension set (the router's per-request and the shadow worker's documents)."""
    by_version: dict[tuple[str, str], VersionStats] = {}
    dimensions = [SERVICE_DIMENSION, MODEL_DIMENSION, VERSION_DIMENSION]
    for document in documents:
        if document.get("_aws", {}).get("Timestamp", 0) < since_ms or not _declares(document, dimensions):
            continue
        key = (str(document[MODEL_DIMENSION]), str(document[VERSION_DIMENSION]))
        stats = by_version.setdefault(key, VersionStats())
        if document.get(SERVICE_DIMENSION) == ROUTER_SERVICE:
            stats.requests += sum(_values(document, REQUESTS_METRIC))
            stats.server_errors += sum(_values(document, SERVER_ERRORS_METRIC))
            stats.latencies_ms += _values(document, LATENCY_METRIC)
        elif document.get(SERVICE_DIMENSION) == SHADOW_SERVICE:
            stats.shadow_requests += sum(_values(document, SHADOW_REQUESTS_METRIC))
            stats.shadow_errors += sum(_values(document, SHADOW_ERRORS_METRIC))
            stats.shadow_latencies_ms += _values(document, SHADOW_LATENCY_METRIC)
            stats.agreements += _values(document, SHADOW_AGREEMENTS_METRIC)
    for stats in by_version.values():
        stats.latency_p99_ms = p99(stats.latencies_ms)
        stats.shadow_latency_p99_ms = p99(stats.shadow_latencies_ms)
        stats.shadow_agreement = sum(stats.agreements) / len(stats.agreements) if stats.agreements else None
    return by_version


def read_emf_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The EMF documents among JSON lines (other lines, and blank ones, are skipped)."""
    documents: list[dict[str, Any]] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        try:
            document = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


def rollout_rows(
    plans: Mapping[str, list[VersionPlan]], stats: Mapping[tuple[str, str], VersionStats]
) -> list[dict[str, Any]]:
    """One row per model version: the plan and what it did (None where nothing was measured)."""
    rows: list[dict[str, Any]] = []
    for model, versions in plans.items():
        for plan in versions:
            measured = stats.get((model, plan.version), VersionStats())
            rows.append(
                {
                    "model": model,
                    "version": plan.version,
                    "role": "shadow" if plan.shadow_sample_rate is not None else "primary" if plan.primary else "live",
                    "weight": plan.weight,
                    "shadow_sample_rate": plan.shadow_sample_rate,
                    "requests": measured.requests,
                    "error_rate": measured.error_rate,
                    "p99_ms": measured.latency_p99_ms,
                    "shadow_requests": measured.shadow_requests,
                    "shadow_errors": measured.shadow_errors,
                    "shadow_agreement": measured.shadow_agreement,
                    "shadow_p99_ms": measured.shadow_latency_p99_ms,
                }
            )
    return rows


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "percent":
        return f"{value * 100:.2f}%"
    if kind == "ms":
        return f"{value:.1f}"
    if kind == "count":
        return f"{value:.0f}"
    return str(value)


COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("model", "model", "text"),
    ("version", "version", "text"),
    ("role", "role", "text"),
    ("weight", "weight %", "text"),
    ("requests", "requests", "count"),
    ("error_rate", "5xx rate", "percent"),
    ("p99_ms", "p99 ms", "ms"),
    ("shadow_requests", "shadowed", "count"),
    ("shadow_errors", "shadow errors", "count"),
    ("shadow_agreement", "agreement", "percent"),
    ("shadow_p99_ms", "shadow p99 ms", "ms"),
)


def rollout_table(rows: Sequence[Mapping[str, Any]], *, title: str) -> str:
    header = [label for _, label, _ in COLUMNS]
    body = [[_cell(row[key], kind) for key, _, kind in COLUMNS] for row in rows]
    widths = [max(len(line[index]) for line in (header, *body)) for index in range(len(header))]
    lines = [title, "  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines += ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in body]
    return "\n".join(line.rstrip() for line in lines)
