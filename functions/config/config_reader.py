"""Reading a JSON config file field by field: every error names the file and the field.

Example:
    >>> str(ConfigReader("models.json").fail("models[0].name", "is required"))
    'models.json: models[0].name: is required'
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The config file is invalid; the message names the file and the field."""


class ConfigReader:
    """Walks a raw JSON config, checking each field and naming its file and path when one is wrong."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {path}: {message}")

    def obj(self, value: Any, path: str, allowed: frozenset[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        unknown = sorted(set(value) - allowed)
        if unknown:
            raise self.fail(
                f"{path}.{unknown[0]}" if path else unknown[0], f"unknown field (allowed: {', '.join(sorted(allowed))})"
            )
        return value

    def required(self, raw: dict[str, Any], key: str, path: str) -> Any:
        if key not in raw:
            raise self.fail(f"{path}.{key}" if path else key, "is required")
        return raw[key]

    def string(self, value: Any, path: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(path, f"{value!r} does not match {pattern.pattern}")
        return value

    def optional_string(
        self, raw: dict[str, Any], key: str, path: str, pattern: re.Pattern[str] | None = None
    ) -> str | None:
        value = raw.get(key)
        return None if value is None else self.string(value, f"{path}.{key}", pattern)

    def positive_int(self, value: Any, path: str, upper: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(path, f"must be a positive integer, got {value!r}")
        if upper is not None and value > upper:
            raise self.fail(path, f"{value} exceeds the route's limit of {upper}")
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value!r}")
        return float(value)

    def min_max(self, raw_value: Any, path: str) -> tuple[float | None, float | None]:
        """A ``{"min": x, "max": y}`` block (either may be left out, not both; min <= max): the bounds of an
        input's range and of an output contract's."""
        raw = self.obj(raw_value, path, frozenset({"min", "max"}))
        minimum = None if raw.get("min") is None else self.number(raw["min"], f"{path}.min")
        maximum = None if raw.get("max") is None else self.number(raw["max"], f"{path}.max")
        if minimum is None and maximum is None:
            raise self.fail(path, "needs min, max or both")
        if minimum is not None and maximum is not None and minimum > maximum:
            raise self.fail(path, f"min {minimum:g} is greater than max {maximum:g}")
        return minimum, maximum


def read_json_file(path: Path, error: type[ConfigError] = ConfigError) -> Any:
    """A config file's JSON; ``error`` names the file, and the line and column of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as failure:
        raise error(f"{path}: cannot be read: {failure.strerror}") from failure
    try:
        return json.loads(text)
    except json.JSONDecodeError as failure:
        raise error(f"{path}: line {failure.lineno} column {failure.colno}: invalid JSON: {failure.msg}") from failure
