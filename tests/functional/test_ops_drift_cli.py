"""``python -m ops baseline`` and ``python -m ops drift --local``: files in, baseline and summary out."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sklearn.datasets import load_iris

from ops.__main__ import main
from tests.functional.test_drift_job import iris_records, write_day

ROOT = Path(__file__).resolve().parents[2]


def test_baseline_from_a_csv_matches_the_shipped_one(tmp_path: Path) -> None:
    data = tmp_path / "iris.csv"
    rows = load_iris().data.astype("float32")
    data.write_text("a,b,c,d\n" + "".join(",".join(repr(float(v)) for v in row) + "\n" for row in rows))
    out = tmp_path / "baseline.json"
    assert main(["baseline", "--model", "iris", "--data", str(data), "--out", str(out)]) == 0
    assert out.read_bytes() == (ROOT / "layers/models/iris/baseline.json").read_bytes()


def test_baseline_from_oip_json_lines(tmp_path: Path) -> None:
    data = tmp_path / "iris.jsonl"
    line = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2] * 2}]}
    data.write_text(json.dumps(line) + "\n\n" + json.dumps(line) + "\n")
    out = tmp_path / "b.json"
    assert main(["baseline", "--model", "iris", "--data", str(data), "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["features"]["input[0]"]["sample"] == [5.1] * 4
    assert set(written["outputs"]) == {"label", "probabilities[0]", "probabilities[1]", "probabilities[2]"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", "1,2,3\n", "3 columns, input 'input' has 4"),
        ("bad.csv", "a,b,c,d\n1,2,x,4\n", "not a number"),
        ("empty.csv", "", "no rows"),
        ("bad.jsonl", '{"inputs": [{"name": "nope"}]}\n', "not an OIP request of model 'iris'"),
        ("none.jsonl", "\n", "no values for input(s) ['input']"),
    ],
)
def test_baseline_refuses_bad_data_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, content: str, message: str
) -> None:
    data = tmp_path / name
    data.write_text(content)
    assert main(["baseline", "--model", "iris", "--data", str(data), "--out", str(tmp_path / "o.json")]) == 2
    assert message in capsys.readouterr().err


def test_baseline_refuses_an_unknown_model_and_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", "--model", "nope", "--data", str(tmp_path / "x.csv")]) == 2
    assert "no model 'nope'" in capsys.readouterr().err
    assert main(["baseline", "--model", "iris", "--data", str(tmp_path / "x.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_drift_local_json_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_day(tmp_path, "iris", datetime.now(UTC).date(), iris_records(500, shift=2.0))
    assert main(["drift", "--local", "--json", "--model", "iris", "--state-dir", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    features = result["models"]["iris"]["features"]
    assert {name for name, f in features.items() if f["drifted"]} == {"input[2]"}
    assert set(features["input[0]"]) >= {"psi", "drifted"}
    assert Path(result["models"]["iris"]["report"]).is_file()
    assert main(["drift", "--local", "--state-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "iris: 500 captured requests" in printed
    assert "drifted: input[2]" in printed
    assert "digits: no captures" in printed


def test_drift_refuses_an_unknown_model_and_a_bad_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drift", "--local", "--model", "nope", "--state-dir", str(tmp_path)]) == 2
    assert "no model(s) ['nope']" in capsys.readouterr().err
    assert main(["drift", "--local", "--days", "0", "--state-dir", str(tmp_path)]) == 2
    assert "--days must be at least 1" in capsys.readouterr().err
