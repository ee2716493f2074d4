"""bench.batching's verdict decides its exit status: a missed target or a failed request fails the run.

Synthetic cells only: no speed is measured or asserted here."""

from __future__ import annotations

import pytest

from bench import batching
from bench.batching import Cell, verdict


def cells(model: str, off_rps: float, on_rps: float, off_p99: float, on_p99: float, errors: int = 0) -> list[Cell]:
    return [
        Cell(model, False, 32, off_rps, 1.0, off_p99, 0, None),
        Cell(model, True, 32, on_rps, 1.0, on_p99, errors, 16.0),
    ]


@pytest.mark.parametrize(
    ("mlp", "ok", "said"),
    [
        (cells("mlp", 100, 350, 10, 15), True, "3.5x throughput, p99 1.50x -> target (>= 3x, p99 <= 2x) met"),
        (cells("mlp", 100, 250, 10, 15), False, "2.5x throughput, p99 1.50x -> target (>= 3x, p99 <= 2x) NOT met"),
        (cells("mlp", 100, 400, 10, 25), False, "4.0x throughput, p99 2.50x -> target (>= 3x, p99 <= 2x) NOT met"),
        (cells("mlp", 100, 400, 10, 15, errors=3), False, "mlp batching on at 32: 3 errors"),
    ],
    ids=["met", "throughput_short", "p99_too_high", "errors"],
)
def test_verdict_fails_the_run_unless_the_target_is_met_without_errors(
    mlp: list[Cell], ok: bool, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert verdict(cells("iris", 100, 110, 1, 1) + mlp) is ok
    assert said in capsys.readouterr().out


def test_verdict_without_the_mlp_says_the_target_was_not_evaluated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(batching, "MODELS", ("iris",))
    assert verdict(cells("iris", 100, 110, 1, 1)) is True
    assert "target not evaluated" in capsys.readouterr().out


def test_verdict_in_report_mode_prints_a_miss_without_failing_but_still_fails_on_errors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(batching, "ENFORCE_TARGET", False)
    assert verdict(cells("mlp", 100, 120, 10, 12)) is True
    assert "NOT met (BENCH_TARGET=report: not failing the run)" in capsys.readouterr().out
    assert verdict(cells("mlp", 100, 120, 10, 12, errors=1)) is False
