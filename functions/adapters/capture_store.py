"""Captured requests as the drift job reads them: from S3 (Firehose's gzip JSON lines) or a local directory.

Both hold ``capture/model=<model>/date=<YYYY-MM-DD>/`` (functions/config/drift_contract.py). A day's objects
may hold records one per line or back to back (Firehose adds no delimiter unless told to), gzip or plain; a
record that is not a capture of the asked model, or a line that is not JSON, is skipped and counted.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

from functions.adapters import aws_clients
from functions.config.drift_contract import capture_day_prefix

logger = logging.getLogger(__name__)
GZIP_MAGIC = b"\x1f\x8b"


class CaptureStore(Protocol):
    def read_window(self, model: str, start_date: date, end_date: date) -> Iterator[dict[str, Any]]:
        """The model's capture records from start_date to end_date, both included."""
        ...


def days(start_date: date, end_date: date) -> Iterator[str]:
    day = start_date
    while day <= end_date:
        yield day.isoformat()
        day += timedelta(days=1)


def decode_records(blob: bytes, model: str, source: str) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``blob`` that is a capture record of ``model``."""
    text = (gzip.decompress(blob) if blob.startswith(GZIP_MAGIC) else blob).decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    position, skipped = 0, 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            break
        try:
            record, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            skipped += 1
            newline = text.find("\n", position)
            position = len(text) if newline < 0 else newline + 1
            continue
        if isinstance(record, dict) and record.get("capture") == 1 and record.get("model") == model:
            yield record
        else:
            skipped += 1
    if skipped:
        logger.warning("%s: skipped %d entries that are not capture records of model %r", source, skipped, model)


class DirectoryCaptureStore:
    """``root/capture/model=<m>/date=<d>/*``: what ``make local`` captures."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def read_window(self, model: str, start_date: date, end_date: date) -> Iterator[dict[str, Any]]:
        for day in days(start_date, end_date):
            folder = self.root / capture_day_prefix(model, day)
            if folder.is_dir():
                for path in sorted(p for p in folder.iterdir() if p.is_file()):
                    yield from decode_records(path.read_bytes(), model, str(path))


class S3CaptureStore:
    """The capture bucket Firehose delivers to."""

    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    @property
    def s3(self) -> Any:
        return self._client or aws_clients.client("s3")

    def read_window(self, model: str, start_date: date, end_date: date) -> Iterator[dict[str, Any]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        for day in days(start_date, end_date):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=capture_day_prefix(model, day)):
                for entry in page.get("Contents", []):
                    body = self.s3.get_object(Bucket=self.bucket, Key=entry["Key"])["Body"].read()
                    yield from decode_records(body, model, f"s3://{self.bucket}/{entry['Key']}")
