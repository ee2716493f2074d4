"""Capture delivery in local mode: what the subscription filter and Firehose do with the router's capture lines
in AWS (infra/constructs/capture.py), done with a file per model and day.

Each capture line lands in ``<root>/capture/model=<model>/date=<YYYY-MM-DD>/capture.jsonl`` (the capture
bucket's layout, functions/config/drift_contract.py), its day the record's timestamp in UTC as Firehose's
partitioning query computes it, so ``python -m ops drift --local`` reads a local run the way the drift job
reads the bucket.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from functions.config.drift_contract import capture_day_prefix
from functions.config.telemetry import CAPTURE_LINE_KEY
from ops.targets import LOCAL_STATE_FILE

CAPTURE_FILE: Final[str] = "capture.jsonl"


def local_capture_dir() -> Path:
    """``.local/`` next to the running stack's state file (gitignored): the root of the local captures'
    ``capture/model=<m>/date=<d>/`` folders, where ``make local`` writes them and the drift CLI reads them."""
    return LOCAL_STATE_FILE.parent


def is_capture_line(line: str) -> bool:
    """Whether ``line`` is one the capture subscription filter (``{ $.capture = 1 }``) would pass: a JSON object
    whose marker is 1."""
    if not line.startswith(f'{{"{CAPTURE_LINE_KEY}"'):
        return False
    try:
        document = json.loads(line)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get(CAPTURE_LINE_KEY) == 1


class LocalCaptureWriter:
    """Appends capture lines under ``root`` in the capture bucket's layout; safe to call from several threads
    (the local API serves each request on its own)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()

    def write(self, line: str) -> Path:
        """Append the capture line to its model's and day's file; returns that file. A line without a model or
        a numeric timestamp is refused (ValueError), as Firehose sends a record it cannot partition to its
        error prefix."""
        record = json.loads(line)
        model, timestamp = record.get("model"), record.get("timestamp")
        if not isinstance(model, str) or not model or "/" in model:
            raise ValueError(f"capture line without a usable model: {model!r}")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise ValueError(f"capture line of model {model!r} without a numeric timestamp: {timestamp!r}")
        day = datetime.fromtimestamp(timestamp, UTC).date().isoformat()
        path = self.root / capture_day_prefix(model, day) / CAPTURE_FILE
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as captures:
                captures.write(line.rstrip("\n") + "\n")
        return path
