"""The values half of an output contract: whether an output's elements are numbers, finite, within range and, for
a probability vector, sum to one. One implementation for the two places that check it: an endpoint's answer
(functions/domain/output_contract.py, a 502) and a static fallback at config load (functions/config/models.py,
refused naming the field), so a fallback can never answer what the check refuses.

Built-in passes (``map``, ``min``, ``max``, ``math.fsum`` over a slice) do the work, and only a breach is looked
for element by element to name the first: the router has no numpy (only the in-Lambda layer does). check_answer
on a 1,000-row iris answer went from ~1.2 to ~0.7 ms p50 (json.loads is ~0.15 of it) against a loop per element,
on a quiet 2-core host; ~1.1 ms p50 under the load of parallel test runs (bench/output_contract.py).

Example:
    >>> values_breach([0.2, 0.3, 0.4], [1, 3], OutputContract(sum_to_one_tolerance=1e-3))
    Breach(check=<ContractCheck.SUM_TO_ONE: 'sum_to_one'>, detail='[0, :] sums to 0.9, not 1 within 0.001')
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from functions.config.model_types import OutputContract

_NUMBER_TYPES = frozenset({int, float})  # exact types: a bool is an int to isinstance, never a number here
# A value that is not a number is the endpoint's (or the config's) text, quoted clipped in an error message.
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 8, 4
_REPR.maxstring = _REPR.maxother = 64


class ContractCheck(StrEnum):
    """Which check an answer failed: the ``check`` dimension of ``OutputContractViolations`` (a closed set)."""

    MALFORMED = "malformed"  # not an OIP response, or an output's data is not numbers
    SHAPE = "shape"  # the shape does not fit the declared one, or the data does not fill it
    FINITE = "finite"
    RANGE = "range"
    SUM_TO_ONE = "sum_to_one"


@dataclass(frozen=True)
class Breach:
    """The first element (or vector) that breaks a contract, and which check it fails."""

    check: ContractCheck
    detail: str


def values_breach(values: list[Any], shape: list[int], contract: OutputContract) -> Breach | None:
    """The first breach of ``contract`` among ``values``, the flat row-major elements of an output of ``shape``
    (the caller has checked that they fill it); None when they keep it. An element that is not a number is
    ``malformed``; then every element is checked for finiteness, then for the range, then the sums."""
    if not _NUMBER_TYPES.issuperset(map(type, values)):
        index, value = next((i, v) for i, v in enumerate(values) if type(v) not in _NUMBER_TYPES)
        detail = f"element {element_index(index, shape)} is {_REPR.repr(value)}, not a number"
        return Breach(ContractCheck.MALFORMED, detail)
    if contract.finite and not all(map(math.isfinite, values)):
        index = next(i for i, v in enumerate(values) if not math.isfinite(v))
        return Breach(ContractCheck.FINITE, f"element {element_index(index, shape)} is {values[index]!r}")
    if contract.value_range is not None and values:
        low, high = contract.value_range.minimum, contract.value_range.maximum
        breach = _range_breach(values, shape, low, high, nan_possible=not contract.finite)
        if breach is not None:
            return breach
    if contract.sum_to_one_tolerance is not None:
        return _sums_breach(values, shape, contract.sum_to_one_axis, contract.sum_to_one_tolerance)
    return None


def _range_breach(
    values: list[Any], shape: list[int], low: float | None, high: float | None, *, nan_possible: bool
) -> Breach | None:
    # NaN compares false to everything, so min and max may skip it: it is looked for apart (out of any range)
    # unless the finite check already ruled it out.
    within = (low is None or min(values) >= low) and (high is None or max(values) <= high)
    if within and not (nan_possible and any(map(math.isnan, values))):
        return None
    for index, value in enumerate(values):
        if low is not None and not value >= low:
            bound = f"below the minimum {low:g}" if value < low else "outside the range"
        elif high is not None and not value <= high:
            bound = f"above the maximum {high:g}" if value > high else "outside the range"
        else:
            continue
        return Breach(ContractCheck.RANGE, f"element {element_index(index, shape)} is {value!r}, {bound}")
    return None


def _sums_breach(values: list[Any], shape: list[int], axis: int, tolerance: float) -> Breach | None:
    """Every vector along ``axis`` sums to 1 within ``tolerance``; the first that does not is named by the
    index of its first element, the axis shown as ``:``."""
    axis %= len(shape)
    size = shape[axis]
    inner = math.prod(shape[axis + 1 :])
    starts = [block * size * inner + offset for block in range(math.prod(shape[:axis])) for offset in range(inner)]
    vectors = [values[start : start + size * inner : inner] for start in starts]
    try:
        totals = list(map(math.fsum, vectors))
    except (ValueError, OverflowError):  # fsum refuses inf + -inf and an overflowing partial sum
        totals = [_total(vector) for vector in vectors]
    # |total - 1| is largest at the smallest or the largest total; a NaN total is never within the tolerance.
    smallest, largest = (min(totals), max(totals)) if totals else (1.0, 1.0)
    within = abs(smallest - 1.0) <= tolerance and abs(largest - 1.0) <= tolerance
    if within and not any(map(math.isnan, totals)):
        return None
    index = next(i for i, total in enumerate(totals) if not abs(total - 1.0) <= tolerance)
    where = element_index(starts[index], shape, free_axis=axis)
    return Breach(ContractCheck.SUM_TO_ONE, f"{where} sums to {totals[index]:g}, not 1 within {tolerance:g}")


def _total(vector: list[Any]) -> float:
    try:
        return math.fsum(vector)
    except (ValueError, OverflowError):
        return math.nan  # never within a tolerance of 1


def flat(data: list[Any]) -> list[Any]:
    """OIP ``data``, flat or nested row-major, as one flat list."""
    if not any(isinstance(item, list) for item in data):
        return data
    values: list[Any] = []
    for item in data:
        values.extend(flat(item) if isinstance(item, list) else [item])
    return values


def element_index(flat_index: int, shape: list[int], free_axis: int | None = None) -> str:
    """The element at ``flat_index`` of a row-major ``shape`` as ``[i, j, ...]`` (``:`` at ``free_axis``)."""
    position: list[str] = []
    for axis in range(len(shape) - 1, -1, -1):
        flat_index, coordinate = divmod(flat_index, shape[axis]) if shape[axis] else (flat_index, 0)
        position.append(":" if axis == free_axis else str(coordinate))
    return f"[{', '.join(reversed(position))}]"
