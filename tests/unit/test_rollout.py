"""The rollout view's arithmetic and the promote/rollback config edits, on hand-computed fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ops.rollout.config_edit import promote, rollback
from ops.rollout.summary import (
    RolloutError,
    model_versions,
    p99,
    read_emf_lines,
    rollout_rows,
    rollout_table,
    stats_from_emf,
)
from tests.helpers.rollout_metrics import TWO_VERSIONS_PLUS_SHADOW, write_metrics

REPO = Path(__file__).resolve().parents[2]
NOW_MS = 1_800_000_000_000


def test_nearest_rank_p99() -> None:
    assert p99([float(value) for value in range(1, 101)]) == 99.0
    assert p99([5.0] * 9 + [500.0]) == 500.0
    assert p99([3.0]) == 3.0
    assert p99([]) is None


def test_summary_of_the_fixture_metrics(tmp_path: Path) -> None:
    lines = write_metrics(tmp_path / "metrics.jsonl", NOW_MS).read_text().splitlines()
    stats = stats_from_emf(read_emf_lines(lines), since_ms=NOW_MS - 60 * 60 * 1000)
    rows = {
        row["version"]: row
        for row in rollout_rows(model_versions(TWO_VERSIONS_PLUS_SHADOW), stats)
        if row["model"] == "iris"
    }
    one, two, shadow = rows["1"], rows["2"], rows["3"]
    assert (one["role"], one["weight"], one["requests"], one["error_rate"], one["p99_ms"]) == (
        "primary", 90, 100, 0.03, 99.0
    )  # fmt: skip
    assert (two["role"], two["weight"], two["requests"], two["error_rate"], two["p99_ms"]) == (
        "live", 10, 10, 0.1, 500.0
    )  # fmt: skip
    assert (shadow["role"], shadow["weight"], shadow["shadow_sample_rate"]) == ("shadow", 0, 0.25)
    assert (shadow["shadow_requests"], shadow["shadow_errors"], shadow["shadow_p99_ms"]) == (4, 1, 30.0)
    assert shadow["shadow_agreement"] == pytest.approx(2 / 3)
    assert (shadow["requests"], shadow["error_rate"]) == (0, None)


def test_the_window_leaves_out_older_documents(tmp_path: Path) -> None:
    lines = write_metrics(tmp_path / "metrics.jsonl", NOW_MS).read_text().splitlines()
    stats = stats_from_emf(read_emf_lines(lines), since_ms=NOW_MS - 11 * 3600 * 1000)
    assert (stats[("iris", "1")].requests, stats[("iris", "1")].server_errors) == (150, 53)
    assert stats_from_emf(read_emf_lines(lines), since_ms=NOW_MS) == {}


def test_a_model_without_versions_has_its_primary_at_100() -> None:
    plans = model_versions(TWO_VERSIONS_PLUS_SHADOW)
    assert [(plan.version, plan.weight, plan.primary) for plan in plans["digits"]] == [("1", 100, True)]
    table = rollout_table(rollout_rows(plans, {}), title="t")
    assert table.splitlines()[1].split()[:4] == ["model", "version", "role", "weight"]
    assert "digits  1        primary  100" in table


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "models.json"
    shutil.copy(REPO / "functions" / "models.json", path)
    return path


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    path = tmp_path / "two.json"
    path.write_text(json.dumps(TWO_VERSIONS_PLUS_SHADOW, indent=2) + "\n")
    return path


def test_rollback_adds_one_traffic_line_in_the_files_own_layout(config: Path) -> None:
    edit = rollback(config, "iris")
    changed = [line for line in edit.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ['+      "traffic": {"1": 100},']
    assert json.loads(edit.after)["models"][0]["traffic"] == {"1": 100}
    assert edit.before == config.read_text()  # nothing written by the edit itself


def test_promote_replaces_a_multiline_traffic_block(two_versions: Path) -> None:
    edit = promote(two_versions, "iris", "2")
    assert json.loads(edit.after)["models"][0]["traffic"] == {"2": 100}
    removed = [
        line[1:].strip() for line in edit.diff.splitlines() if line.startswith("-") and not line.startswith("---")
    ]
    added = [line[1:].strip() for line in edit.diff.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert (removed, added) == (['"1": 90,', '"2": 10'], ['"2": 100'])
    assert json.loads(rollback(two_versions, "iris").after)["models"][0]["traffic"] == {"1": 100}


def test_promote_the_primary_of_a_model_without_traffic(two_versions: Path) -> None:
    after = json.loads(promote(two_versions, "digits", "1").after)
    assert after["models"][1] == {**TWO_VERSIONS_PLUS_SHADOW["models"][1], "traffic": {"1": 100}}


@pytest.mark.parametrize(
    ("model", "version", "message"),
    [
        ("nope", "1", "unknown model 'nope' (models: iris, digits)"),
        ("iris", "9", "model 'iris' has no version '9' (versions: 1, 2, 3)"),
        ("iris", "3", "version '3' of model 'iris' is a shadow: it serves no caller. To promote it, first remove"),
    ],
)
def test_promote_refuses(two_versions: Path, model: str, version: str, message: str) -> None:
    with pytest.raises(RolloutError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        promote(two_versions, model, version)


def test_rollback_of_an_unknown_model_is_refused(two_versions: Path) -> None:
    with pytest.raises(RolloutError, match="unknown model 'nope'"):
        rollback(two_versions, "nope")


def test_a_missing_or_broken_config_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RolloutError, match="no such model config file"):
        rollback(tmp_path / "absent.json", "iris")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(RolloutError, match="not valid JSON"):
        rollback(tmp_path / "bad.json", "iris")
    (tmp_path / "flat.json").write_text("[]")
    with pytest.raises(RolloutError, match="has no 'models' list"):
        rollback(tmp_path / "flat.json", "iris")


def test_a_layout_the_edit_cannot_follow_is_refused_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "one_line.json"
    path.write_text(json.dumps(TWO_VERSIONS_PLUS_SHADOW))
    with pytest.raises(RolloutError, match="could not change only 'iris''s traffic in place"):
        promote(path, "iris", "2")
