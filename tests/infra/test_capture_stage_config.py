"""The stage's ``capture`` section: how long the capture bucket keeps captured requests and drift reports."""

from __future__ import annotations

from typing import Any

import pytest

from infra.config.capture import read_capture
from infra.config.reader import StageReader
from infra.config.types import StageConfigError


def read(raw: Any) -> int:
    return read_capture(StageReader("stages.json", "dev"), raw).retention_days


def test_retention_defaults_to_90_days_and_may_be_set() -> None:
    assert read({}) == 90
    assert read({"retention_days": 30}) == 30
    assert read({"retention_days": 3650}) == 3650


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"retention_days": 0}, "capture.retention_days: 0 is outside 1..3650"),
        ({"retention_days": 3651}, "capture.retention_days: 3651 is outside 1..3650"),
        ({"retention_days": "90"}, "capture.retention_days: must be a whole number"),
        ({"retention_days": True}, "capture.retention_days: must be a whole number"),
        ({"days": 9}, "capture.days"),
        ([], "capture"),
    ],
)
def test_a_wrong_capture_section_is_refused_naming_its_field(raw: Any, message: str) -> None:
    with pytest.raises(StageConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        read(raw)
