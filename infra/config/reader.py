"""Reading the stage file one field at a time; every error names the file and the field's path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from infra.config.types import StageConfigError


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; any other value in ``override`` replaces the one in ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class StageReader:
    """Checks one field at a time and names its path in every error."""

    def __init__(self, source: str, prefix: str) -> None:
        self.source = source
        self.prefix = prefix

    def fail(self, path: str, message: str) -> StageConfigError:
        return StageConfigError(f"{self.source}: {self.prefix}{path}: {message}")

    def obj(self, value: Any, path: str, allowed: frozenset[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def field(self, raw: dict[str, Any], key: str, path: str) -> Any:
        if key not in raw:
            raise self.fail(f"{path}.{key}", "is required (set it in the stage or in defaults)")
        return raw[key]

    def integer(self, value: Any, path: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            raise self.fail(path, f"{value} is outside {bounds}")
        return value

    def number(self, value: Any, path: str, low: float, high: float, *, low_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value!r}")
        if value < low or (low_open and value == low) or value > high:
            raise self.fail(path, f"{value} is outside {'(' if low_open else '['}{low}, {high}]")
        return float(value)

    def string(self, value: Any, path: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(path, f"{value!r} is not {hint or f'matching {pattern.pattern}'}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[Any, ...]) -> Any:
        if value not in choices:
            raise self.fail(path, f"{value!r} is not one of {', '.join(str(choice) for choice in choices)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")
        return value
