"""Reading an output's optional ``contract``: what the router checks of an endpoint's answer before it reaches
the caller (functions/domain/output_contract.py). Every error names the field. A static fallback answers in
place of the endpoint, so its data must keep the same contract (the same check, functions/config/contract_checks.py).

Example:
    >>> reader = ContractReader("models.json")
    >>> reader.contract({"finite": True, "sum_to_one": {"tolerance": 1e-3}}, "outputs[1].contract", "FP32", (-1, 3))
    OutputContract(value_range=None, finite=True, sum_to_one_tolerance=0.001, sum_to_one_axis=-1)
"""

from __future__ import annotations

from typing import Any, Final

from functions.config.config_reader import ConfigReader
from functions.config.contract_checks import flat, values_breach
from functions.config.datatypes import FLOAT_TYPES
from functions.config.model_types import OutputContract, TensorSpec, ValueRange

# A tolerance this wide no longer tells a probability vector from any other: a typo, refused.
MAX_SUM_TOLERANCE: Final[float] = 0.5


class ContractReader(ConfigReader):
    def contract(self, raw_value: Any, path: str, datatype: str, shape: tuple[int, ...]) -> OutputContract | None:
        if raw_value is None:
            return None
        raw = self.obj(raw_value, path, frozenset({"range", "finite", "sum_to_one"}))
        if datatype in ("BOOL", "BYTES"):
            raise self.fail(path, f"a contract applies to numeric outputs, not {datatype}")
        if not raw:
            raise self.fail(path, "declares no check: give range, finite or sum_to_one, or remove it")
        value_range = self._range(raw.get("range"), f"{path}.range")
        finite = raw.get("finite", False)
        if not isinstance(finite, bool):
            raise self.fail(f"{path}.finite", f"must be true or false, got {finite!r}")
        if finite and datatype not in FLOAT_TYPES:
            raise self.fail(f"{path}.finite", f"applies to floating-point outputs; every {datatype} value is finite")
        tolerance, axis = None, -1
        if "sum_to_one" in raw:
            tolerance, axis = self._sum_to_one(raw["sum_to_one"], f"{path}.sum_to_one", datatype, shape)
        return OutputContract(value_range, finite, tolerance, axis)

    def static_keeps_contract(self, spec: TensorSpec, data: Any, shape: list[int], path: str) -> None:
        """A static fallback's ``data`` for output ``spec`` (its element count already checked against ``shape``)
        keeps the output's contract, or is refused naming ``path``: a fallback that broke it would answer what
        the endpoint may not."""
        if spec.contract is None:
            return
        breach = values_breach(flat(data) if isinstance(data, list) else [data], shape, spec.contract)
        if breach is not None:
            raise self.fail(path, f"breaks the output's contract, the {breach.check} check: {breach.detail}")

    def _range(self, raw_value: Any, path: str) -> ValueRange | None:
        if raw_value is None:
            return None
        return ValueRange(*self.min_max(raw_value, path))

    def _sum_to_one(self, raw_value: Any, path: str, datatype: str, shape: tuple[int, ...]) -> tuple[float, int]:
        raw = self.obj(raw_value, path, frozenset({"tolerance", "axis"}))
        if datatype not in FLOAT_TYPES:
            raise self.fail(path, f"applies to floating-point probability vectors, not a {datatype} output")
        tolerance = self.number(self.required(raw, "tolerance", path), f"{path}.tolerance")
        if not 0 <= tolerance <= MAX_SUM_TOLERANCE:
            raise self.fail(f"{path}.tolerance", f"{tolerance:g} must be between 0 and {MAX_SUM_TOLERANCE:g}")
        axis = raw.get("axis", -1)
        if isinstance(axis, bool) or not isinstance(axis, int) or not -len(shape) <= axis < len(shape):
            raise self.fail(f"{path}.axis", f"{axis!r} is not an axis of the output's shape {list(shape)}")
        return tolerance, axis
