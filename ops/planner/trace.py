"""Reading a request trace: CSV (or CSV.gz) with ``timestamp,model,latency_ms,request_bytes,response_bytes``.

``timestamp`` is ISO 8601 (a naive one is UTC) or epoch seconds; ``latency_ms`` is the model's compute time at
the reference memory (2048 MB on a serverless endpoint). Rows need not be sorted; a model the model config does
not know is fine (a user's trace names their own models).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import numpy as np

from ops.planner.pool import FloatArray, IntArray

COLUMNS: Final[tuple[str, ...]] = ("timestamp", "model", "latency_ms", "request_bytes", "response_bytes")


class TraceError(ValueError):
    """The trace cannot be read; the message names the file and, for a bad row, its line number."""


@dataclass(frozen=True, slots=True)
class TraceRequest:
    timestamp_s: float
    model: str
    latency_ms: float
    request_bytes: int
    response_bytes: int


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _row(values: dict[str, str], where: str) -> TraceRequest:
    fields = {key: (values.get(key) or "").strip() for key in COLUMNS}
    missing = [key for key, value in fields.items() if not value]
    if missing:
        raise TraceError(f"{where}: empty {', '.join(missing)}")
    try:
        timestamp = _timestamp(fields["timestamp"])
    except ValueError:
        raise TraceError(f"{where}: timestamp {fields['timestamp']!r} is neither ISO 8601 nor epoch seconds") from None
    try:
        latency = float(fields["latency_ms"])
        sizes = int(fields["request_bytes"]), int(fields["response_bytes"])
    except ValueError as error:
        raise TraceError(f"{where}: {error}") from None
    if not math.isfinite(timestamp) or not math.isfinite(latency) or latency < 0:
        raise TraceError(f"{where}: timestamp and latency_ms must be finite, latency_ms at least 0")
    if min(sizes) < 0:
        raise TraceError(f"{where}: request_bytes and response_bytes must be at least 0")
    return TraceRequest(timestamp, fields["model"], latency, *sizes)


def load_trace(path: str | Path) -> list[TraceRequest]:
    """The trace's requests sorted by time (stable: rows at one instant keep the file's order)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode()
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as error:
        raise TraceError(f"{path}: cannot read the trace: {error}") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    absent = [name for name in COLUMNS if name not in header]
    if absent:
        raise TraceError(f"{path}: line 1: the header lacks {', '.join(absent)} (expected {','.join(COLUMNS)})")
    reader.fieldnames = header
    requests = [_row(values, f"{path}: line {reader.line_num}") for values in reader]
    if not requests:
        raise TraceError(f"{path}: the trace holds no request")
    requests.sort(key=_when)
    return requests


@dataclass(frozen=True, slots=True)
class ModelTrace:
    """One model's requests as arrays, in time order: what the simulations replay."""

    model: str
    arrivals_s: FloatArray
    latency_ms: FloatArray
    request_bytes: IntArray
    response_bytes: IntArray

    @classmethod
    def of(cls, requests: Sequence[TraceRequest], model: str | None = None) -> ModelTrace:
        return cls(
            model if model is not None else (requests[0].model if requests else ""),
            np.array([request.timestamp_s for request in requests], dtype=np.float64),
            np.array([request.latency_ms for request in requests], dtype=np.float64),
            np.array([request.request_bytes for request in requests], dtype=np.int64),
            np.array([request.response_bytes for request in requests], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.arrivals_s)


def by_model(requests: Sequence[TraceRequest]) -> dict[str, ModelTrace]:
    """Each model's share of a sorted trace, models in order of first appearance."""
    grouped: dict[str, list[TraceRequest]] = {}
    for request in requests:
        grouped.setdefault(request.model, []).append(request)
    return {model: ModelTrace.of(rows, model) for model, rows in grouped.items()}


def as_model_trace(requests: Sequence[TraceRequest] | ModelTrace) -> ModelTrace:
    return requests if isinstance(requests, ModelTrace) else ModelTrace.of(sorted(requests, key=_when))


def _when(request: TraceRequest) -> float:
    return request.timestamp_s
