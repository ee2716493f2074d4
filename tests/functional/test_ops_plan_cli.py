"""``python -m ops plan`` end to end on a small synthetic trace: the JSON shape, the stage diff, the plot, the
text report and the refusals."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import pytest

from ops.__main__ import main

HEADER = "timestamp,model,latency_ms,request_bytes,response_bytes\n"
CONTRACT_KEYS = {"tier", "memory_mb", "provisioned_concurrency", "cost_usd", "p99_ms", "cold_starts"}


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    """iris (a model of functions/models.json) at 2 requests/s for 20 minutes, and a model of the user's own
    with one burst of 30 requests."""
    rows = [f"{1736150400 + i * 0.5:.3f},iris,3,200,80" for i in range(2400)]
    rows += [f"{1736150700 + i * 0.01:.3f},user-model,120,5000,100" for i in range(30)]
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def test_json_has_the_contract_shape_and_progress_stays_off_stdout(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["plan", "--trace", str(trace), "--json"]) == 0
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert set(document["models"]) == {"iris", "user-model"}
    for model in document["models"].values():
        assert model["options"]
        assert all(set(option) >= CONTRACT_KEYS for option in model["options"])
        assert model["recommended"] in model["options"]
        tiers = {option["tier"] for option in model["options"]}
        assert tiers == {"lambda", "serverless", "async"}
    assert document["router"]["recommended"] in document["router"]["options"]
    assert "stage_diff" not in document  # no --stage
    assert "requests planned in" in err


def test_stage_prints_the_recommended_change_as_a_diff_without_writing(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stages = Path("infra/stages.json").read_text()
    models = Path("functions/models.json").read_text()
    assert main(["plan", "--trace", str(trace), "--stage", "dev", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    diff = document["stage_diff"]
    # A 3 ms model at a steady 2 requests/s is cheapest inside the router, well within 1000 ms.
    assert document["models"]["iris"]["recommended"]["tier"] == "lambda"
    assert diff.startswith("--- a/infra/stages.json\n+++ b/infra/stages.json\n")
    assert '+        "provisioned_concurrency":' in diff
    models_diff = diff[diff.index("--- a/functions/models.json") :]
    assert '-        "sync": "serverless",\n+        "sync": "lambda",\n' in models_diff
    assert "user-model" not in diff  # a model this repository does not configure
    assert Path("infra/stages.json").read_text() == stages
    assert Path("functions/models.json").read_text() == models


def test_text_report_marks_the_recommendations(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "--trace", str(trace), "--stage", "prod"]) == 0
    out = capsys.readouterr().out
    assert "iris: p99 target 1000 ms" in out
    assert "recommended:" in out
    assert "router provisioned concurrency (over all models):" in out
    assert "the change to stage prod this plan recommends:" in out


class _Balanced(HTMLParser):
    VOID = frozenset({"meta"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.svgs += tag == "svg"
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        assert self.open, f"</{tag}> closes nothing"
        assert self.open.pop() == tag, f"</{tag}> closes another tag"


def test_plot_writes_a_well_formed_html_page(trace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plan.html"
    assert main(["plan", "--trace", str(trace), "--plot", str(out)]) == 0
    page = out.read_text()
    parser = _Balanced()
    parser.feed(page)
    assert parser.open == []
    assert parser.svgs == 3
    assert "recommended" in page
    assert "<polyline" in page
    assert "<circle" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--stage", "nowhere"], "no stage 'nowhere'"),
        (["--params", "/nonexistent.json"], "/nonexistent.json"),
    ],
)
def test_refusals_exit_2_with_the_reason(
    trace: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["plan", "--trace", str(trace), *args]) == 2
    assert message in capsys.readouterr().err


def test_a_bad_trace_exits_2_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "0,a,1,1,1\n0,a,x,1,1\n")
    assert main(["plan", "--trace", str(path)]) == 2
    assert "line 3" in capsys.readouterr().err
