"""The drift job's wiring: :class:`DriftJob` reads each model's captured window and its baseline, compares
them (functions/domain/drift_evaluation.py), writes the HTML report and emits one EMF document per model
(``FeaturePsi`` and ``FeatureDrifted`` by model and feature, ``OutputPsi`` by model and output,
``MaxFeaturePsi`` by model, which the ticket alarm watches). The scheduled Lambda and ``python -m ops drift
--local`` both run it; a model without captures in the window is reported with no values and emits nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from functions.adapters.capture_store import CaptureStore, S3CaptureStore
from functions.adapters.drift_files import S3ReportWriter, load_directory_baselines
from functions.config.drift_contract import (
    BASELINES_DIR_VARIABLE,
    CAPTURE_BUCKET_VARIABLE,
    DRIFT_SERVICE,
    DRIFT_SETTINGS_VARIABLE,
    FEATURE_DIMENSION,
    FEATURE_DRIFTED_METRIC,
    FEATURE_PSI_METRIC,
    MAX_FEATURE_PSI_METRIC,
    OUTPUT_DIMENSION,
    OUTPUT_PSI_METRIC,
    report_key,
)
from functions.config.telemetry import METRICS_NAMESPACE, MODEL_DIMENSION, SERVICE_DIMENSION
from functions.domain.drift import Baseline
from functions.domain.drift_evaluation import DriftThresholds, ModelDrift, evaluate
from functions.domain.drift_report import render_report

ReportWriter = Callable[[str, str], str]  # (key, html) -> where it was written


@dataclass(frozen=True)
class DriftSettings:
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    window_days: int = 1

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> DriftSettings:
        window_days = int(raw.get("window_days", 1))
        if window_days < 1:
            raise ValueError(f"window_days {window_days} must be at least 1")
        thresholds = DriftThresholds(
            psi=float(raw.get("psi", DriftThresholds.psi)),
            ks_p_value=float(raw.get("ks_p_value", DriftThresholds.ks_p_value)),
            ks_min_samples=int(raw.get("ks_min_samples", DriftThresholds.ks_min_samples)),
        )
        return cls(thresholds, window_days)


def metric_document(model: str, dimension: str, name: str, values: Mapping[str, float], at_ms: int) -> dict[str, Any]:
    return {
        "_aws": {
            "Timestamp": at_ms,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[SERVICE_DIMENSION, MODEL_DIMENSION, dimension]] if dimension else
                              [[SERVICE_DIMENSION, MODEL_DIMENSION]],
                "Metrics": [{"Name": metric, "Unit": "None"} for metric in values],
            }],
        },
        SERVICE_DIMENSION: DRIFT_SERVICE,
        MODEL_DIMENSION: model,
        **({dimension: name} if dimension else {}),
        **values,
    }  # fmt: skip


def metric_documents(drift: ModelDrift, at_ms: int) -> list[dict[str, Any]]:
    """One document per feature and output (EMF puts one value per dimension set in a document)."""
    documents = [metric_document(drift.model, "", "", {MAX_FEATURE_PSI_METRIC: drift.max_feature_psi}, at_ms)]
    for name, feature in drift.features.items():
        values = {FEATURE_PSI_METRIC: feature.psi, FEATURE_DRIFTED_METRIC: 1.0 if feature.drifted else 0.0}
        documents.append(metric_document(drift.model, FEATURE_DIMENSION, name, values, at_ms))
    for name, output in drift.outputs.items():
        documents.append(metric_document(drift.model, OUTPUT_DIMENSION, name, {OUTPUT_PSI_METRIC: output.psi}, at_ms))
    return documents


@dataclass
class DriftJob:
    store: CaptureStore
    baselines: Mapping[str, Baseline]
    settings: DriftSettings
    write_report: ReportWriter
    emit: Callable[[str], None] = print

    def run(
        self, start: date, end: date, at_ms: int, models: tuple[str, ...] = ()
    ) -> dict[str, tuple[ModelDrift, str | None]]:
        """Each model's captures from ``start`` to ``end`` (both included) against its baseline."""
        window = start.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
        results: dict[str, tuple[ModelDrift, str | None]] = {}
        for model, baseline in self.baselines.items():
            if models and model not in models:
                continue
            drift = evaluate(baseline, self.store.read_window(model, start, end), self.settings.thresholds)
            where = None
            if drift.records:
                for document in metric_documents(drift, at_ms):
                    self.emit(json.dumps(document, separators=(",", ":")))
                html = render_report(drift, window, self.settings.thresholds.psi)
                where = self.write_report(report_key(model, end.isoformat()), html)
            results[model] = (drift, where)
        return results


def scheduled_window(today: date, window_days: int) -> tuple[date, date]:
    """The days before today: today's captures are still arriving (Firehose buffers up to 15 minutes)."""
    end = today - timedelta(days=1)
    return end - timedelta(days=window_days - 1), end


def summary(results: Mapping[str, tuple[ModelDrift, str | None]]) -> dict[str, Any]:
    """``{"models": {"<name>": {"records", "features": {...}, "outputs": {...}, "report"}}}``."""
    return {"models": {model: {**drift.to_json(), "report": where} for model, (drift, where) in results.items()}}


def create_handler(
    environ: Mapping[str, str], clock: Callable[[], float] = time.time
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The scheduled Lambda: the capture bucket, the baselines' directory (the layer's ``/opt/baselines``) and
    the settings from ``environ``, read on the first run and kept: importing the handler reads nothing."""
    built: list[DriftJob] = []

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not built:
            bucket = environ[CAPTURE_BUCKET_VARIABLE]
            built.append(
                DriftJob(
                    store=S3CaptureStore(bucket),
                    baselines=load_directory_baselines(Path(environ[BASELINES_DIR_VARIABLE])),
                    settings=DriftSettings.from_json(json.loads(environ.get(DRIFT_SETTINGS_VARIABLE) or "{}")),
                    write_report=S3ReportWriter(bucket),
                )
            )
        job = built[0]
        now = clock()
        start, end = scheduled_window(datetime.fromtimestamp(now, UTC).date(), job.settings.window_days)
        return summary(job.run(start, end, int(now * 1000)))

    return lambda_handler
