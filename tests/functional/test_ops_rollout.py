"""``python -m ops rollout``: status from a local metrics file and from CloudWatch (botocore Stubber), promote and
rollback on a copy of the model config, and every refusal's exit code and message."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import NoCredentialsError
from botocore.stub import ANY, Stubber

from ops.__main__ import main
from ops.rollout.cloudwatch import QUERIES, cloudwatch_stats, metric_queries
from ops.rollout.summary import model_versions
from tests.helpers.rollout_metrics import TWO_VERSIONS_PLUS_SHADOW, write_metrics

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps(TWO_VERSIONS_PLUS_SHADOW, indent=2) + "\n")
    return path


@pytest.fixture
def metrics(tmp_path: Path) -> Path:
    return write_metrics(tmp_path / "metrics.jsonl", int(time.time() * 1000))


def test_local_status_as_json(two_versions: Path, metrics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["rollout", "status", "--local", "--metrics-file", str(metrics), "--config", str(two_versions), "--json"]
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    rows = {(row["model"], row["version"]): row for row in report["versions"]}
    assert (report["window_minutes"], rows[("iris", "1")]["p99_ms"], rows[("iris", "1")]["error_rate"]) == (
        60,
        99,
        0.03,
    )
    assert (rows[("iris", "2")]["weight"], rows[("iris", "2")]["p99_ms"]) == (10, 500)
    assert rows[("iris", "3")]["shadow_agreement"] == pytest.approx(2 / 3)


def test_local_status_as_a_table(two_versions: Path, metrics: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "status", "--local", "--metrics-file", str(metrics), "--config", str(two_versions)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("last 60 min")
    assert lines[2].split() == ["iris", "1", "primary", "90", "100", "3.00%", "99.0", "0", "0", "-", "-"]
    assert lines[4].split() == ["iris", "3", "shadow", "0", "0", "-", "-", "4", "1", "66.67%", "30.0"]


def test_status_without_local_metrics_says_so(two_versions: Path, tmp_path: Path, capsys: Any) -> None:
    argv = [
        "rollout",
        "status",
        "--local",
        "--metrics-file",
        str(tmp_path / "none.jsonl"),
        "--config",
        str(two_versions),
    ]
    assert main(argv) == 2
    assert "none.jsonl: no metrics yet" in capsys.readouterr().err


def test_status_refuses_a_window_under_a_minute(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "status", "--local", "--window", "0"]) == 2
    assert "--window must be at least 1" in capsys.readouterr().err


def test_status_refuses_an_unknown_stage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "status", "--stage", "staging"]) == 2
    assert "unknown stage 'staging'" in capsys.readouterr().err


def stubbed_cloudwatch() -> tuple[Any, Stubber]:
    client = boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return client, Stubber(client)


def results_for(queries: list[dict[str, Any]], values: dict[tuple[str, str], list[float]]) -> list[dict[str, Any]]:
    """A MetricDataResult per query: ``values`` by (version, stats field), empty otherwise."""
    _, meaning = metric_queries(model_versions(TWO_VERSIONS_PLUS_SHADOW), window_s=3600)
    return [
        {"Id": query["Id"], "Label": query["Id"], "StatusCode": "Complete", "Timestamps": [],
         "Values": values.get((meaning[query["Id"]][1], meaning[query["Id"]][2]), [])
         if meaning[query["Id"]][0] == "iris" else []}
        for query in queries
    ]  # fmt: skip


def test_cloudwatch_stats_from_one_paged_get_metric_data() -> None:
    plans = model_versions(TWO_VERSIONS_PLUS_SHADOW)
    queries, _ = metric_queries(plans, window_s=3600)
    assert len(queries) == 4 * len(QUERIES)  # iris 1, 2, 3 and digits 1
    assert queries[2]["MetricStat"]["Stat"] == "p99"
    assert queries[2]["MetricStat"]["Metric"]["Dimensions"] == [
        {"Name": "service", "Value": "inference-router"},
        {"Name": "model", "Value": "iris"},
        {"Name": "version", "Value": "1"},
    ]
    end = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    results = results_for(
        queries,
        {("1", "requests"): [900.0], ("1", "server_errors"): [9.0], ("1", "latency_p99_ms"): [120.0],
         ("2", "requests"): [60.0, 40.0], ("3", "shadow_requests"): [25.0], ("3", "shadow_agreement"): [0.96],
         ("3", "shadow_latency_p99_ms"): [80.0]},
    )  # fmt: skip
    client, stubber = stubbed_cloudwatch()
    expected = {"MetricDataQueries": queries, "StartTime": datetime(2027, 1, 1, 11, 0, tzinfo=UTC), "EndTime": end}
    stubber.add_response("get_metric_data", {"MetricDataResults": results[:10], "NextToken": "page2"}, expected)
    stubber.add_response("get_metric_data", {"MetricDataResults": results[10:]}, {**expected, "NextToken": "page2"})
    with stubber:
        stats = cloudwatch_stats(client, plans, end=end, window_minutes=60)
    stubber.assert_no_pending_responses()
    one, two, shadow = stats[("iris", "1")], stats[("iris", "2")], stats[("iris", "3")]
    assert (one.requests, one.error_rate, one.latency_p99_ms) == (900, 0.01, 120)
    assert two.requests == 100  # a count split over two periods is summed
    assert (shadow.shadow_requests, shadow.shadow_agreement, shadow.shadow_latency_p99_ms) == (25, 0.96, 80)
    assert ("digits", "1") not in stats


def test_deployed_status_reads_cloudwatch_in_the_stages_region(
    two_versions: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = stubbed_cloudwatch()
    queries, _ = metric_queries(model_versions(TWO_VERSIONS_PLUS_SHADOW), window_s=30 * 60)
    results = results_for(queries, {("2", "requests"): [50.0], ("2", "server_errors"): [5.0]})
    stubber.add_response(
        "get_metric_data",
        {"MetricDataResults": results},
        {"MetricDataQueries": queries, "StartTime": ANY, "EndTime": ANY},
    )
    regions: list[str] = []

    def fake_client(service: str, region_name: str) -> Any:
        regions.append(region_name)
        return client

    monkeypatch.setattr(boto3, "client", fake_client)
    with stubber:
        code = main(["rollout", "status", "--stage", "prod", "--window", "30", "--config", str(two_versions), "--json"])
    assert code == 0
    assert regions == ["us-east-1"]
    report = json.loads(capsys.readouterr().out)
    row = next(row for row in report["versions"] if (row["model"], row["version"]) == ("iris", "2"))
    assert (report["where"], row["requests"], row["error_rate"]) == ("stage prod (us-east-1)", 50, 0.1)


def test_deployed_status_without_credentials_says_so(
    two_versions: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class NoCredentials:
        def get_metric_data(self, **_: Any) -> Any:
            raise NoCredentialsError()

    monkeypatch.setattr(boto3, "client", lambda service, region_name: NoCredentials())
    assert main(["rollout", "status", "--stage", "dev", "--config", str(two_versions)]) == 2
    assert "no AWS credentials found" in capsys.readouterr().err


def test_deployed_status_reports_a_cloudwatch_error(
    two_versions: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client, stubber = stubbed_cloudwatch()
    stubber.add_client_error("get_metric_data", "AccessDenied", "not allowed")
    monkeypatch.setattr(boto3, "client", lambda service, region_name: client)
    with stubber:
        assert main(["rollout", "status", "--stage", "dev", "--config", str(two_versions)]) == 2
    assert "CloudWatch GetMetricData in us-east-1 failed" in capsys.readouterr().err


def test_promote_writes_the_config_and_rollback_undoes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "models.json"
    shutil.copy(REPO / "local" / "models.rollout.json", config)
    before = config.read_text()
    assert main(["rollout", "promote", "iris", "2", "--config", str(config), "--dry-run"]) == 0
    assert "(dry run: nothing written)" in capsys.readouterr().out
    assert config.read_text() == before
    assert main(["rollout", "promote", "iris", "2", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert '+        "2": 100' in out
    assert f"wrote {config}" in out
    assert json.loads(config.read_text())["models"][0]["traffic"] == {"2": 100}
    assert main(["rollout", "rollback", "iris", "--config", str(config)]) == 0
    assert json.loads(config.read_text())["models"][0]["traffic"] == {"1": 100}
    capsys.readouterr()
    assert main(["rollout", "rollback", "iris", "--config", str(config)]) == 0
    assert "already so; nothing to change" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["promote", "nope", "1"], "unknown model 'nope'"),
        (["promote", "iris", "7"], "has no version '7'"),
        (["promote", "iris", "3"], "is a shadow"),
        (["rollback", "nope"], "unknown model 'nope'"),
    ],
)
def test_edits_refuse_by_name(
    two_versions: Path, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = two_versions.read_text()
    assert main(["rollout", *argv, "--config", str(two_versions)]) == 2
    assert message in capsys.readouterr().err
    assert two_versions.read_text() == before


def test_edits_refuse_a_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rollout", "rollback", "iris", "--config", str(tmp_path / "gone.json")]) == 2
    assert "gone.json: no such model config file" in capsys.readouterr().err
