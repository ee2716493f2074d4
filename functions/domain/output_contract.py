"""Output checks: an endpoint's answer that breaks its model's declared output contract never reaches the caller.

A model's outputs may declare a ``contract`` (models.json): a range, finiteness and, for a probability vector, a
sum to one within a tolerance along an axis. Only a model that declares one pays for parsing its answers; any
other answer passes through as bytes (functions/domain/infer.py ``checked_answer``). The first breach raises
:class:`OutputContractError` (a 502, or the model's fallback marked degraded, cause ``output-contract``) naming
the output, the check and the first offending element, its values clipped like every echo.

Example:
    >>> check_answer(iris, b'{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[1.7,0,0]}]}')
    Traceback (most recent call last):
    OutputContractError: model 'iris' answered outside its contract: output 'probabilities' fails the range check: ...
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from functions.config.model_types import ModelConfig, OutputContract, TensorSpec
from functions.domain.echo import clip, clip_message
from functions.domain.errors import EndpointRejectedError


class ContractCheck(StrEnum):
    """Which check an answer failed: the ``check`` dimension of ``OutputContractViolations`` (a closed set)."""

    MALFORMED = "malformed"  # not an OIP response, or an output's data is not numbers
    SHAPE = "shape"  # the shape does not fit the declared one, or the data does not fill it
    FINITE = "finite"
    RANGE = "range"
    SUM_TO_ONE = "sum_to_one"


class OutputContractError(EndpointRejectedError):
    """The endpoint answered, but outside the model's declared output contract (HTTP 502)."""

    def __init__(self, model: str, output: str | None, check: ContractCheck, detail: str) -> None:
        where = f"output {output!r} fails the {check} check" if output is not None else f"fails the {check} check"
        super().__init__(clip_message(f"model {model!r} answered outside its contract: {where}: {detail}"))
        self.model = model
        self.output = output
        self.check = check


def has_contract(model: ModelConfig) -> bool:
    """Whether any output of ``model`` declares a contract (only then is its answer parsed)."""
    return any(spec.contract is not None for spec in model.outputs)


def check_answer(model: ModelConfig, answer: bytes) -> None:
    """Raise :class:`OutputContractError` on the first breach of ``model``'s output contracts in ``answer``.

    Every output the answer holds that declares a contract is checked; an output the request did not ask for
    is absent from the answer and so not checked. Outputs without a contract are not looked at.
    """
    declared = {spec.name: spec for spec in model.outputs if spec.contract is not None}
    if not declared:
        return
    try:
        document = json.loads(answer)
    except ValueError:
        raise OutputContractError(model.name, None, ContractCheck.MALFORMED, "the answer is not JSON") from None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        raise OutputContractError(model.name, None, ContractCheck.MALFORMED, "the answer has no list of outputs")
    for index, output in enumerate(outputs):
        if not isinstance(output, dict):
            raise OutputContractError(model.name, None, ContractCheck.MALFORMED, f"outputs[{index}] is not an object")
        spec = declared.get(output.get("name"))  # type: ignore[arg-type]
        if spec is not None and spec.contract is not None:
            _check_output(model.name, spec, spec.contract, output)


def _check_output(model: str, spec: TensorSpec, contract: OutputContract, output: dict[str, Any]) -> None:
    def breach(check: ContractCheck, detail: str) -> OutputContractError:
        return OutputContractError(model, spec.name, check, detail)

    shape = output.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != len(spec.shape)
        or any(isinstance(dim, bool) or not isinstance(dim, int) or dim < 0 for dim in shape)
        or any(want not in (-1, got) for got, want in zip(shape, spec.shape, strict=True))
    ):
        raise breach(ContractCheck.SHAPE, f"shape {clip(shape)} does not fit the declared {list(spec.shape)}")
    data = output.get("data")
    if not isinstance(data, list):
        raise breach(ContractCheck.MALFORMED, f"data is {clip(data)}, not a list")
    values = _flat(data)
    if len(values) != math.prod(shape):
        raise breach(ContractCheck.SHAPE, f"data holds {len(values)} elements; shape {shape} needs {math.prod(shape)}")
    for flat_index, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise breach(ContractCheck.MALFORMED, f"element {_index(flat_index, shape)} is {clip(value)}, not a number")
        if contract.finite and not math.isfinite(value):
            raise breach(ContractCheck.FINITE, f"element {_index(flat_index, shape)} is {value!r}")
    if contract.value_range is not None:
        low, high = contract.value_range.minimum, contract.value_range.maximum
        for flat_index, value in enumerate(values):
            if low is not None and not value >= low:  # NaN fails both comparisons: out of any range
                bound = f"below the minimum {low:g}" if value < low else "outside the range"
            elif high is not None and not value <= high:
                bound = f"above the maximum {high:g}" if value > high else "outside the range"
            else:
                continue
            raise breach(ContractCheck.RANGE, f"element {_index(flat_index, shape)} is {value!r}, {bound}")
    if contract.sum_to_one_tolerance is not None:
        _check_sums(values, shape, contract.sum_to_one_axis, contract.sum_to_one_tolerance, breach)


def _check_sums(
    values: list[Any], shape: list[int], axis: int, tolerance: float, breach: Callable[[ContractCheck, str], Exception]
) -> None:
    """Every vector along ``axis`` sums to 1 within ``tolerance``; the first that does not is named by the
    index of its first element, the axis shown as ``:``."""
    axis %= len(shape)
    size = shape[axis]
    inner = math.prod(shape[axis + 1 :])
    outer = math.prod(shape[:axis])
    for block in range(outer):
        for offset in range(inner):
            start = block * size * inner + offset
            total = math.fsum(values[start + step * inner] for step in range(size))
            if not abs(total - 1.0) <= tolerance:
                where = _index(start, shape, free_axis=axis)
                raise breach(ContractCheck.SUM_TO_ONE, f"{where} sums to {total:g}, not 1 within {tolerance:g}")


def _flat(data: list[Any]) -> list[Any]:
    """OIP ``data``, flat or nested row-major, as one flat list."""
    if not any(isinstance(item, list) for item in data):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(_flat(item) if isinstance(item, list) else [item])
    return flat


def _index(flat_index: int, shape: list[int], free_axis: int | None = None) -> str:
    """The element at ``flat_index`` of a row-major ``shape`` as ``[i, j, ...]`` (``:`` at ``free_axis``)."""
    position: list[str] = []
    for axis in range(len(shape) - 1, -1, -1):
        flat_index, coordinate = divmod(flat_index, shape[axis]) if shape[axis] else (flat_index, 0)
        position.append(":" if axis == free_axis else str(coordinate))
    return f"[{', '.join(reversed(position))}]"
