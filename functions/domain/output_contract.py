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
from typing import Any

from functions.config.contract_checks import ContractCheck, flat, values_breach
from functions.config.model_types import ModelConfig, OutputContract, TensorSpec
from functions.domain.echo import clip, clip_message
from functions.domain.errors import EndpointRejectedError


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
    shape = output.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) != len(spec.shape)
        or any(isinstance(dim, bool) or not isinstance(dim, int) or dim < 0 for dim in shape)
        or any(want not in (-1, got) for got, want in zip(shape, spec.shape, strict=True))
    ):
        detail = f"shape {clip(shape)} does not fit the declared {list(spec.shape)}"
        raise OutputContractError(model, spec.name, ContractCheck.SHAPE, detail)
    data = output.get("data")
    if not isinstance(data, list):
        raise OutputContractError(model, spec.name, ContractCheck.MALFORMED, f"data is {clip(data)}, not a list")
    values = flat(data)
    if len(values) != math.prod(shape):
        detail = f"data holds {len(values)} elements; shape {shape} needs {math.prod(shape)}"
        raise OutputContractError(model, spec.name, ContractCheck.SHAPE, detail)
    breach = values_breach(values, shape, contract)
    if breach is not None:
        raise OutputContractError(model, spec.name, breach.check, breach.detail)
