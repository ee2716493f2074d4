"""What the drift job, its CDK construct, local mode and the alarm simulator agree on: the capture bucket's
layout as the job reads it, where reports go, the job's environment and the metrics it publishes."""

from __future__ import annotations

from typing import Final

# Firehose delivers capture records under capture/model=<model>/date=<YYYY-MM-DD>/ (gzip JSON lines); local mode
# writes the same layout under its state directory, one capture.jsonl per model and day.
CAPTURE_PREFIX: Final[str] = "capture/"
# The drift job's HTML report: reports/drift/model=<model>/date=<YYYY-MM-DD>/report.html in the capture bucket.
DRIFT_REPORT_PREFIX: Final[str] = "reports/drift/"

# Each model's reference statistics, next to its artifact (<artifact dir>/baseline.json): `python -m ops baseline`
# writes it; the platform stack ships every capturing model's copy to the drift job in one Lambda layer, as
# <BASELINES_LAYER_DIR>/<model>.json, which Lambda extracts under /opt.
BASELINE_FILE: Final[str] = "baseline.json"
BASELINES_LAYER_DIR: Final[str] = "baselines"
BASELINES_LAYER_SUFFIX: Final[str] = ".json"

DRIFT_SERVICE: Final[str] = "inference-drift"
# By model and feature (an input's column, "input[2]"); FeatureDrifted is 1 or 0.
FEATURE_PSI_METRIC: Final[str] = "FeaturePsi"
FEATURE_DRIFTED_METRIC: Final[str] = "FeatureDrifted"
# By model and output feature ("label", "probabilities[0]"): prediction drift.
OUTPUT_PSI_METRIC: Final[str] = "OutputPsi"
# By model alone: the largest FeaturePsi of the run, which the drift ticket alarm watches (one metric per model
# instead of metric math over a model's every feature).
MAX_FEATURE_PSI_METRIC: Final[str] = "MaxFeaturePsi"
FEATURE_DIMENSION: Final[str] = "feature"
OUTPUT_DIMENSION: Final[str] = "output"

# The drift function's environment, set by infra/constructs/drift.py.
CAPTURE_BUCKET_VARIABLE: Final[str] = "CAPTURE_BUCKET"
# The directory of the baselines layer (/opt/baselines): one variable however many models capture.
BASELINES_DIR_VARIABLE: Final[str] = "DRIFT_BASELINES_DIR"
# JSON {"psi": 0.2, "ks_p_value": 0.01, "ks_min_samples": 100, "window_days": 1}.
DRIFT_SETTINGS_VARIABLE: Final[str] = "DRIFT_SETTINGS"


def capture_day_prefix(model: str, date: str) -> str:
    return f"{CAPTURE_PREFIX}model={model}/date={date}/"


def report_key(model: str, date: str) -> str:
    return f"{DRIFT_REPORT_PREFIX}model={model}/date={date}/report.html"
