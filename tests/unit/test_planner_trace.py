"""The trace parser and the --params file: what they accept and every way they refuse."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from ops.planner.params import ParamsError, SimulationParams, load_params
from ops.planner.trace import TraceError, load_trace

HEADER = "timestamp,model,latency_ms,request_bytes,response_bytes\n"


def write(tmp_path: Path, text: str, name: str = "trace.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    return path


def test_reads_iso_and_epoch_timestamps_sorted_from_csv_and_gzip(tmp_path: Path) -> None:
    text = HEADER + "2025-01-06T00:00:10Z,a,2.5,10,20\n1736121600,b,3,1,2\n2025-01-06T00:00:05,c,1,0,0\n"
    for name in ("trace.csv", "trace.csv.gz"):
        trace = load_trace(write(tmp_path, text, name))
        assert [(r.model, r.timestamp_s) for r in trace] == [
            ("b", 1736121600.0),
            ("c", 1736121605.0),
            ("a", 1736121610.0),
        ]
        assert trace[2].latency_ms == 2.5
        assert (trace[2].request_bytes, trace[2].response_bytes) == (10, 20)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("0,a,1,1,1\nyesterday,a,1,1,1\n", "line 3: timestamp 'yesterday'"),
        ("0,a,slow,1,1\n", "line 2: could not convert"),
        ("0,a,-1,1,1\n", "line 2: timestamp and latency_ms must be finite"),
        ("0,a,1,1.5,1\n", "line 2: invalid literal"),
        ("0,a,1,-4,1\n", "line 2: request_bytes and response_bytes must be at least 0"),
        ("0,,1,1,1\n", "line 2: empty model"),
        ("0,a,1\n", "line 2: empty request_bytes, response_bytes"),
        ("nan,a,1,1,1\n", "line 2: timestamp and latency_ms must be finite"),
    ],
)
def test_a_bad_row_names_its_line(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        load_trace(write(tmp_path, HEADER + body))


def test_a_missing_column_empty_trace_or_unreadable_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="line 1: the header lacks latency_ms"):
        load_trace(write(tmp_path, "timestamp,model,request_bytes,response_bytes\n0,a,1,1\n"))
    with pytest.raises(TraceError, match="holds no request"):
        load_trace(write(tmp_path, HEADER))
    with pytest.raises(TraceError, match="cannot read the trace"):
        load_trace(tmp_path / "absent.csv")
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(TraceError, match="cannot read the trace"):
        load_trace(broken)


def test_params_file_overrides_fields_and_refuses_unknown_or_wrong_values(tmp_path: Path) -> None:
    assert load_params(None) == SimulationParams()
    good = tmp_path / "p.json"
    good.write_text(
        '{"router_cold_start_ms": 250, "model_size_mb": {"big": 900}, "serverless_memory_sizes_mb": [1024]}'
    )
    params = load_params(good)
    assert (params.router_cold_start_ms, params.model_mb("big"), params.model_mb("other")) == (250.0, 900.0, 50.0)
    assert params.serverless_memory_sizes_mb == (1024,)
    for text, message in [
        ("[1]", "must be a JSON object"),
        ('{"cold": 1}', "unknown parameter"),
        ('{"gpu_speedup": -1}', "gpu_speedup must be a number at least 0"),
        ('{"gpu_speedup": true}', "gpu_speedup must be a number"),
        ('{"max_provisioned_options": 2.5}', "must be a whole number"),
        ('{"model_size_mb": {"a": "big"}}', "model_size_mb must be an object"),
        ('{"serverless_memory_sizes_mb": []}', "non-empty list of positive integers"),
        ("{", "p.json"),
    ]:
        good.write_text(text)
        with pytest.raises(ParamsError, match=message):
            load_params(good)
