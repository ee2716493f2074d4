"""A metric's minute as CloudWatch stores it, and the statistics an alarm reads from a period of minutes.

A minute is a set of values with counts, as PutMetricData's ``Values``/``Counts`` (and one EMF document per
request) store them: a counter is one value per minute, a per-request 0/1 metric (API Gateway's 5XXError, the
router's ServerErrors) is a 1 and a 0 with their counts, a latency is a histogram. ``None`` is a minute in which
nothing was emitted: a missing datapoint, not a zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

_PERCENTILE: Final[re.Pattern[str]] = re.compile(r"^p(\d{1,2}(?:\.\d+)?)$")


class UnsupportedStatisticError(ValueError):
    """The alarm reads a statistic the simulator does not compute."""


@dataclass(frozen=True, slots=True)
class Samples:
    """One minute of one metric: (value, count) pairs."""

    pairs: tuple[tuple[float, float], ...]

    @classmethod
    def value(cls, value: float) -> Samples:
        """A counter or gauge published once a minute (Lambda's Errors, SQS's queue depth)."""
        return cls(((float(value), 1.0),))

    @classmethod
    def events(cls, hits: float, total: float) -> Samples:
        """A 0/1 metric emitted once per event: ``hits`` ones out of ``total`` (5XXError, ServerErrors)."""
        return cls.histogram([(1.0, hits), (0.0, total - hits)])

    @classmethod
    def histogram(cls, pairs: Iterable[tuple[float, float]]) -> Samples:
        return cls(tuple((float(value), float(count)) for value, count in pairs if count > 0))


def merge(minutes: Iterable[Samples | None]) -> list[tuple[float, float]]:
    return [pair for minute in minutes if minute is not None for pair in minute.pairs]


def statistic(minutes: Iterable[Samples | None], name: str) -> float | None:
    """``name`` (Sum, Average, Minimum, Maximum, SampleCount, pNN) over the minutes; None when nothing was emitted."""
    pairs = merge(minutes)
    if not pairs:
        return None
    count = sum(weight for _, weight in pairs)
    if name == "Sum":
        return sum(value * weight for value, weight in pairs)
    if name == "SampleCount":
        return count
    if name == "Average":
        return sum(value * weight for value, weight in pairs) / count
    if name == "Minimum":
        return min(value for value, _ in pairs)
    if name == "Maximum":
        return max(value for value, _ in pairs)
    match = _PERCENTILE.match(name)
    if match:
        return percentile(pairs, float(match.group(1)))
    raise UnsupportedStatisticError(
        f"statistic {name!r} is not simulated (Sum, Average, Minimum, Maximum, SampleCount, pNN)"
    )


def percentile(pairs: Sequence[tuple[float, float]], rank: float) -> float:
    """The smallest value with at least ``rank`` percent of the samples at or below it."""
    ordered = sorted(pairs)
    total = sum(weight for _, weight in ordered)
    seen = 0.0
    for value, weight in ordered:
        seen += weight
        if seen >= total * rank / 100 - 1e-9:
            return value
    return ordered[-1][0]
