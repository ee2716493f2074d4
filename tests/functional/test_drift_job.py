"""The drift job end to end on one machine: capture records in the contract's layout (a directory, and S3
through moto), the shipped iris baseline, the report and the EMF documents; the Lambda entry point too."""

from __future__ import annotations

import gzip
import json
import os
import random
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from functions.adapters import aws_clients
from functions.adapters.capture_store import DirectoryCaptureStore, S3CaptureStore, decode_records
from functions.adapters.drift_files import (
    BaselinesMissingError,
    DirectoryReportWriter,
    S3ReportWriter,
    load_directory_baselines,
    load_file_baselines,
)
from functions.config.drift_contract import BASELINES_DIR_VARIABLE, CAPTURE_BUCKET_VARIABLE, DRIFT_SETTINGS_VARIABLE
from functions.domain.drift import Baseline
from functions.handlers.drift.app import DriftJob, DriftSettings, create_handler, scheduled_window, summary

ROOT = Path(__file__).resolve().parents[2]
IRIS_BASELINE = ROOT / "layers" / "models" / "iris" / "baseline.json"
DAY = date(2025, 3, 14)


def iris_baseline() -> Baseline:
    return load_file_baselines({"iris": IRIS_BASELINE})["iris"]


def iris_records(count: int, shift: float = 0.0, seed: int = 0) -> list[dict[str, Any]]:
    """Rows resampled from the baseline's own KS sample of each column (iris's 150 training rows)."""
    baseline = iris_baseline()
    columns = [baseline.features[f"input[{c}]"].sample for c in range(4)]
    rng = random.Random(seed)
    records = []
    for _ in range(count):
        row = [rng.choice(column) + rng.gauss(0, 0.01) for column in columns]
        row[2] += shift
        records.append({"capture": 1, "model": "iris", "version": "1", "timestamp": 1.0,
                        "inputs": {"input": {"shape": [1, 4], "data": row}}})  # fmt: skip
    return records


def write_day(root: Path, model: str, day: date, records: list[dict[str, Any]]) -> None:
    folder = root / "capture" / f"model={model}" / f"date={day.isoformat()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "capture.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_a_directory_window_from_the_baseline_is_stable_and_a_shifted_column_drifts(tmp_path: Path) -> None:
    write_day(tmp_path, "iris", DAY, iris_records(1000))
    lines: list[str] = []
    job = DriftJob(DirectoryCaptureStore(tmp_path), {"iris": iris_baseline()}, DriftSettings(),
                   DirectoryReportWriter(tmp_path), emit=lines.append)  # fmt: skip
    stable, report = job.run(DAY, DAY, 1_700_000_000_000)["iris"]
    assert stable.records == 1000
    assert not stable.drifted, stable.to_json()
    assert report == str(tmp_path / "reports/drift/model=iris/date=2025-03-14/report.html")
    html = Path(report).read_text()
    assert "input[2]" in html
    assert html.count("<svg") == 4
    documents = [json.loads(line) for line in lines]
    assert documents[0]["MaxFeaturePsi"] == stable.max_feature_psi
    assert documents[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model"]]
    feature = next(d for d in documents if d.get("feature") == "input[2]")
    assert feature["FeatureDrifted"] == 0.0
    assert feature["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model", "feature"]]

    write_day(tmp_path, "iris", DAY, iris_records(1000, shift=2.0))
    shifted, _ = job.run(DAY, DAY, 1_700_000_000_000)["iris"]
    drifted = {name for name, feature in shifted.features.items() if feature.drifted}
    assert drifted == {"input[2]"}
    assert shifted.features["input[2]"].psi > 1.0


def test_a_model_without_captures_reports_nothing_and_emits_nothing(tmp_path: Path) -> None:
    lines: list[str] = []
    job = DriftJob(DirectoryCaptureStore(tmp_path), {"iris": iris_baseline()}, DriftSettings(),
                   DirectoryReportWriter(tmp_path), emit=lines.append)  # fmt: skip
    results = job.run(DAY, DAY, 0)
    assert summary(results) == {"models": {"iris": {"records": 0, "features": {}, "outputs": {}, "report": None}}}
    assert lines == []
    assert job.run(DAY, DAY, 0, models=("digits",)) == {}


def test_records_back_to_back_gzip_other_models_and_garbage_are_sorted_out() -> None:
    records = iris_records(3)
    blob = gzip.compress(("".join(json.dumps(r) for r in records) + '{"capture": 1, "model": "digits"}\nnot json\n'
                          + json.dumps(records[0])).encode())  # fmt: skip
    assert len(list(decode_records(blob, "iris", "test"))) == 4


def test_the_scheduled_window_ends_yesterday() -> None:
    assert scheduled_window(DAY, 1) == (date(2025, 3, 13), date(2025, 3, 13))
    assert scheduled_window(DAY, 7) == (date(2025, 3, 7), date(2025, 3, 13))


@pytest.mark.parametrize(("raw", "message"), [({"window_days": 0}, "window_days 0"), ({"psi": -1}, "psi threshold -1")])
def test_settings_refuse_bad_values(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DriftSettings.from_json(raw)


def test_the_baselines_directory_names_each_model_by_its_file(tmp_path: Path) -> None:
    (tmp_path / "iris.json").write_bytes(IRIS_BASELINE.read_bytes())
    (tmp_path / "iris.v2.json").write_bytes(IRIS_BASELINE.read_bytes())
    (tmp_path / "README").write_text("not a baseline")
    baselines = load_directory_baselines(tmp_path)
    assert list(baselines) == ["iris", "iris.v2"]
    assert baselines["iris"] == iris_baseline()


@pytest.mark.parametrize("folder", ["absent", "empty"])
def test_a_missing_or_empty_baselines_directory_is_refused(tmp_path: Path, folder: str) -> None:
    directory = tmp_path / folder
    if folder == "empty":
        directory.mkdir()
    with pytest.raises(BaselinesMissingError, match=rf"no baseline \.json files in {directory}"):
        load_directory_baselines(directory)


@mock_aws
def test_the_lambda_reads_s3_captures_and_its_layers_baselines_and_writes_the_report_to_s3(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="capture")
    layer = tmp_path / "opt" / "baselines"  # the layer's tree as Lambda extracts it
    layer.mkdir(parents=True)
    (layer / "iris.json").write_bytes(IRIS_BASELINE.read_bytes())
    yesterday = scheduled_window(datetime.now(UTC).date(), 1)[1].isoformat()
    for part in range(2):  # Firehose writes gzip objects, several per day
        body = gzip.compress("".join(json.dumps(r) + "\n" for r in iris_records(300, seed=part)).encode())
        s3.put_object(Bucket="capture", Key=f"capture/model=iris/date={yesterday}/part-{part}.gz", Body=body)
    monkeypatch.setenv(CAPTURE_BUCKET_VARIABLE, "capture")
    monkeypatch.setenv(BASELINES_DIR_VARIABLE, str(layer))
    monkeypatch.setenv(DRIFT_SETTINGS_VARIABLE, json.dumps({"psi": 0.25, "window_days": 1}))
    aws_clients.reset_clients()
    now = datetime.now(UTC).timestamp()
    result = create_handler(os.environ, clock=lambda: now)({}, None)
    aws_clients.reset_clients()
    iris = result["models"]["iris"]
    assert iris["records"] == 600
    assert not any(feature["drifted"] for feature in iris["features"].values())
    key = f"reports/drift/model=iris/date={yesterday}/report.html"
    assert iris["report"] == f"s3://capture/{key}"
    report = s3.get_object(Bucket="capture", Key=key)
    assert report["ContentType"] == "text/html; charset=utf-8"
    assert list(S3CaptureStore("capture", s3).read_window("iris", date(2000, 1, 1), date(2000, 1, 2))) == []
    assert S3ReportWriter("capture", s3)("x.html", "<p>") == "s3://capture/x.html"
