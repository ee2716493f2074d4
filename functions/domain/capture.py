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
from collections.abc import Iterator, Mapping
from typing import Any, Final

from functions.config.model_types import CaptureConfig

CAPTURE_BUCKETS: Final[int] = 10_000
# The subscription filter's pattern matches this key's value 1 and nothing else the router logs.
CAPTURE_MARKER: Final[str] = "capture"
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
    ``{"shape": [...], "data": [flat row-major values]}``."""
    allowed = set(capture.inputs)
    record: dict[str, Any] = {
        CAPTURE_MARKER: 1,
        "model": model,
        "version": version,
        "timestamp": timestamp,
        "inputs": {
            entry["name"]: _tensor(entry) for entry in request.get("inputs") or () if entry.get("name") in allowed
        },
    }
    if capture.outputs and answer is not None:
        document = json.loads(answer)
        record["outputs"] = {entry["name"]: _tensor(entry) for entry in document.get("outputs") or ()}
    return json.dumps(record, separators=(",", ":"), allow_nan=True)


def _tensor(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {"shape": list(entry.get("shape") or ()), "data": list(_flat(entry.get("data")))}


def _flat(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data
