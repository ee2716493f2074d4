"""Capture for drift monitoring: which answered requests are captured, and the one JSON line that carries a
captured request's allow-listed inputs and its outputs from the router to the capture bucket (a subscription
filter on the router's log group, then Firehose; locally the log tee writes it to a directory).

Example:
    >>> capture_sampled("3f1c...-request-id", b"{}", "iris", 1.0)
    True
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from functions.config.model_types import CaptureConfig
from functions.config.telemetry import CAPTURE_LINE_KEY

CAPTURE_BUCKETS: Final[int] = 10_000
# The subscription filter's pattern matches this key's value 1 and nothing else the router logs.
CAPTURE_MARKER: Final[str] = CAPTURE_LINE_KEY
_SALT: Final[bytes] = b"capture\x00"


def capture_sampled(request_id: str | None, body: bytes, model: str, sample_rate: float) -> bool:
    """Whether this request is captured: a hash of the API request's id (else of the body) into [0, 10000)
    below ``sample_rate`` of it. A hash, not the router's random generator: that one also draws the retry
    jitter, which a capture draw would shift, and a hash gives the same answer for the same request in a test,
    a benchmark or a retried invocation of one event. Salted apart from the version pick and the shadow's sample,
    so the captured share of each version is the configured share."""
    key = request_id.encode() if request_id is not None else hashlib.sha256(body).digest()
    digest = hashlib.sha256(_SALT + model.encode() + b"\x00" + key).digest()
    return int.from_bytes(digest[:8], "big") % CAPTURE_BUCKETS < round(sample_rate * CAPTURE_BUCKETS)


def capture_line(
    model: str,
    version: str,
    request: Mapping[str, Any],
    answer: bytes | None,
    capture: CaptureConfig,
    *,
    timestamp: float,
) -> str:
    """The capture record of one answered request: the validated request's allow-listed inputs and, when
    ``capture.outputs``, the answer's outputs (``answer`` parsed here, only for a captured request), each as
    ``{"shape": [...], "data": [flat row-major values]}`` of at most ``capture.max_rows`` evenly spaced rows
    of the batch (the same rows of every tensor that has the same number of rows)."""
    allowed = set(capture.inputs)
    record: dict[str, Any] = {
        CAPTURE_MARKER: 1,
        "model": model,
        "version": version,
        "timestamp": timestamp,
        "inputs": {
            entry["name"]: _tensor(entry, capture.max_rows)
            for entry in request.get("inputs") or ()
            if entry.get("name") in allowed
        },
    }
    if capture.outputs and answer is not None:
        document = json.loads(answer)
        record["outputs"] = {entry["name"]: _tensor(entry, capture.max_rows) for entry in document.get("outputs") or ()}
    return json.dumps(record, separators=(",", ":"), allow_nan=True)


def picked_rows(rows: int, max_rows: int) -> range | list[int]:
    """Which of a batch's ``rows`` a capture keeps: all of them up to ``max_rows``, else ``max_rows`` evenly
    spaced from the first (a batch's order may follow its source's, so its head alone would be a biased
    sample)."""
    if rows <= max_rows:
        return range(rows)
    return [index * rows // max_rows for index in range(max_rows)]


def _tensor(entry: Mapping[str, Any], max_rows: int) -> dict[str, Any]:
    """One tensor's picked rows, flat row-major: a slice per row of flat data, or the row's own list of nested
    data; only the picked rows are walked."""
    shape = list(entry.get("shape") or ())
    data = entry.get("data")
    if not shape or not isinstance(data, list):
        return {"shape": shape, "data": _flat(data)}
    picks = picked_rows(shape[0], max_rows)
    flat: list[Any] = []
    if data and isinstance(data[0], list):
        for index in picks:
            row = data[index]
            flat.extend(_flat(row) if row and isinstance(row[0], list) else row)
    else:
        width = math.prod(shape[1:])
        for index in picks:
            flat.extend(data[index * width : (index + 1) * width])
    return {"shape": [len(picks), *shape[1:]], "data": flat}


def _flat(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    for item in data:
        if isinstance(item, list):
            flat.extend(_flat(item))
        else:
            flat.append(item)
    return flat
