"""The capture bucket's stage knobs, ``capture``: how long captured requests and drift reports are kept.

``retention_days`` (1-3650, default 90) is the lifecycle expiry of every object in the capture bucket: captured
requests may carry what callers sent, so they are kept no longer than the drift job's windows and a look back
at a report need.
"""

from __future__ import annotations

from typing import Any, Final

from infra.config.reader import StageReader
from infra.config.types import CaptureStageConfig

DEFAULT_RETENTION_DAYS: Final[int] = 90
MAX_RETENTION_DAYS: Final[int] = 3650
CAPTURE_KEYS: Final[frozenset[str]] = frozenset({"retention_days"})


def read_capture(reader: StageReader, raw_value: Any) -> CaptureStageConfig:
    raw = reader.obj(raw_value, "capture", CAPTURE_KEYS)
    days = reader.integer(
        raw.get("retention_days", DEFAULT_RETENTION_DAYS), "capture.retention_days", 1, MAX_RETENTION_DAYS
    )
    return CaptureStageConfig(retention_days=days)
