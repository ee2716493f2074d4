"""Open Inference Protocol tensor datatypes and the Python values each accepts in JSON."""

from __future__ import annotations

from typing import Final

INTEGER_BOUNDS: Final[dict[str, tuple[int, int]]] = {
    "INT8": (-(2**7), 2**7 - 1),
    "INT16": (-(2**15), 2**15 - 1),
    "INT32": (-(2**31), 2**31 - 1),
    "INT64": (-(2**63), 2**63 - 1),
    "UINT8": (0, 2**8 - 1),
    "UINT16": (0, 2**16 - 1),
    "UINT32": (0, 2**32 - 1),
    "UINT64": (0, 2**64 - 1),
}
FLOAT_TYPES: Final[frozenset[str]] = frozenset({"FP16", "FP32", "FP64"})
# FP16's largest finite value; a larger JSON number would become inf in the model.
FLOAT_MAX: Final[dict[str, float]] = {"FP16": 65504.0, "FP32": 3.4028234663852886e38, "FP64": 1.7976931348623157e308}
DATATYPES: Final[tuple[str, ...]] = ("BOOL", *INTEGER_BOUNDS, *sorted(FLOAT_TYPES), "BYTES")
