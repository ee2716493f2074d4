"""The reference trace: regenerating it with the default seed gives the committed CSV, and its shape is the one
bench/traces/README.md states."""

from __future__ import annotations

import csv
import gzip
import io
from collections import Counter
from pathlib import Path

import pytest

from bench.traces.reference import DEFAULT_OUT, HEADER, START_EPOCH_S, generate, main, relative_rate


def test_the_committed_trace_is_what_the_default_seed_generates() -> None:
    # The CSV text, not the gzip stream: zlib's compressed bytes may differ between zlib versions.
    assert gzip.decompress(DEFAULT_OUT.read_bytes()).decode() == generate()


def test_the_committed_trace_has_the_stated_shape() -> None:
    rows = list(csv.DictReader(io.StringIO(gzip.decompress(DEFAULT_OUT.read_bytes()).decode())))
    assert ",".join(rows[0]) == HEADER
    times = [float(row["timestamp"]) for row in rows]
    assert times == sorted(times)
    assert times[0] >= START_EPOCH_S
    assert times[-1] < START_EPOCH_S + 7 * 86_400
    counts = Counter(row["model"] for row in rows)
    assert 250_000 < len(rows) < 350_000
    assert set(counts) == {"tabular-tiny", "text-mid", "image-spiky", "heavy-generator"}
    assert counts["heavy-generator"] < 7 * 24 * 10  # a few an hour
    # Bursts: some second holds at least 50 image-spiky arrivals.
    per_second = Counter(int(float(row["timestamp"])) for row in rows if row["model"] == "image-spiky")
    assert max(per_second.values()) >= 25
    assert DEFAULT_OUT.stat().st_size < 5 * 1024 * 1024


def test_a_seed_replays_and_another_seed_differs() -> None:
    assert generate(seed=3, hours=2, start_hour=9) == generate(seed=3, hours=2, start_hour=9)
    assert generate(seed=3, hours=2, start_hour=9) != generate(seed=4, hours=2, start_hour=9)


def test_scale_and_window_cut_the_trace() -> None:
    full = generate(hours=2, start_hour=9).count("\n")
    scaled = generate(hours=2, start_hour=9, scale=0.1).count("\n")
    assert 0 < scaled < full / 5
    first = float(generate(hours=1, start_hour=9).splitlines()[1].split(",")[0])
    assert START_EPOCH_S + 9 * 3600 <= first < START_EPOCH_S + 10 * 3600


def test_business_traffic_is_a_weekday_daytime_shape() -> None:
    assert relative_rate("business", 10.0) == 1.0  # Monday 10:00
    assert relative_rate("business", 5 * 24 + 10.0) == 0.05  # Saturday 10:00
    assert relative_rate("diurnal", 15.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown traffic shape"):
        relative_rate("sawtooth", 0.0)


def test_the_cli_writes_plain_csv_and_refuses_a_bad_scale(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "short.csv"
    assert main(["--out", str(out), "--hours", "1", "--scale", "0.5", "--start-hour", "9"]) == 0
    assert out.read_text() == generate(hours=1, scale=0.5, start_hour=9)
    with pytest.raises(SystemExit):
        main(["--out", str(out), "--scale", "0"])
    assert "scale must be positive" in capsys.readouterr().err
