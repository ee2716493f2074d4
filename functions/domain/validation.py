"""Validation of Open Inference Protocol infer requests against a model's declared signature.

Everything is checked before any call leaves the router; the first broken rule raises
:class:`InvalidRequestError` naming the input and the rule, or :class:`PayloadTooLargeError`.

Example:
    >>> request = validate_infer_request(model, b'{"inputs": [...]}')
    >>> request.batch_rows
    1
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from functions.config.datatypes import DATATYPES, FLOAT_MAX, FLOAT_TYPES, INTEGER_BOUNDS
from functions.config.model_types import ModelConfig, TensorSpec
from functions.domain.binary_tensors import decode_request
from functions.domain.body_guard import MAX_KEYS, parse_json_body
from functions.domain.echo import clip
from functions.domain.errors import InvalidRequestError, PayloadTooLargeError
from functions.domain.model_versions import model_versions

# Strict: any other top-level field is a 400. The spec's place for extensions is ``parameters``, and a
# misspelled field ("output") silently ignored would answer what the caller did not ask for. ``model_name`` and
# ``model_version`` are the kserve SDK's (its ``InferRequest.to_rest()`` always sends ``model_name``): accepted
# here, compared with the path by :func:`check_request_identity`.
REQUEST_FIELDS = frozenset({"id", "model_name", "model_version", "parameters", "inputs", "outputs"})
IDENTITY_FIELDS = ("model_name", "model_version")
INPUT_FIELDS = frozenset({"name", "shape", "datatype", "data", "parameters"})
OUTPUT_FIELDS = frozenset({"name", "parameters"})
# List items a request holds besides its tensors' data: inputs and outputs entries, shape dimensions,
# parameter lists (its object members are bounded by MAX_KEYS apart).
ITEMS_BESIDES_DATA = 1_000
# A value that rounds to a finite number of the type: the largest finite value plus half its unit in the last
# place (a tie rounds to even, which is the next power of two: infinity). JSON writes FP32's largest value
# 3.4028234663852886e38 as 3.4028235e38, which is above it as a double but rounds to it as a float32.
FLOAT_ROUNDING_LIMIT = {"FP16": 65520.0, "FP32": 2.0**128 - 2.0**103}


@dataclass(frozen=True)
class InferRequest:
    """A request that passed every check: safe to forward as ``body``. ``document`` is ``body`` parsed, once:
    whatever else reads the request (the last-good key, the in-Lambda model) reads it, never the bytes again."""

    model: ModelConfig
    body: bytes
    document: dict[str, Any]
    request_id: str | None
    batch_rows: int
    requested_outputs: tuple[str, ...]


def check_body_size(model: ModelConfig, body: bytes, limit: int | None = None) -> None:
    limit = model.limits.max_body_bytes if limit is None else limit
    if len(body) > limit:
        raise PayloadTooLargeError(f"request body is {len(body)} bytes; model {model.name!r} accepts at most {limit}")


def max_items(model: ModelConfig) -> int | None:
    """The most list items and object members a valid request for ``model`` can hold, or None when a free
    dimension past the batch leaves its tensors unbounded."""
    elements = 0
    for spec in model.inputs:
        if any(dim == -1 for dim in spec.shape[1:]):
            return None
        dims = [model.limits.max_batch_rows if dim == -1 else dim for dim in spec.shape]
        elements += math.prod(dims)
    return elements + MAX_KEYS + ITEMS_BESIDES_DATA


def validate_infer_request(
    model: ModelConfig, body: bytes, max_body_bytes: int | None = None, *, header_length: str | None = None
) -> InferRequest:
    """Check everything; ``max_body_bytes`` overrides the model's sync limit (the async path takes more).
    With ``header_length`` (``Inference-Header-Content-Length``) the body is the binary tensor data extension's:
    its binary inputs are decoded (:mod:`functions.domain.binary_tensors`), then checked like JSON ones."""
    check_body_size(model, body, max_body_bytes)
    if header_length is None:
        document = parse_json_body(body, max_items(model))
    else:
        document = decode_request(body, header_length, max_items(model))
    if not isinstance(document, dict):
        raise InvalidRequestError(f"request body must be a JSON object, got {_json_type(document)}")
    unknown = sorted(set(document) - REQUEST_FIELDS)
    if unknown:
        raise InvalidRequestError(
            f"unknown request field {clip(unknown[0])} "
            "(allowed: id, model_name, model_version, parameters, inputs, outputs)"
        )
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidRequestError(f"'id' must be a string, got {_json_type(request_id)}")
    for field in IDENTITY_FIELDS:
        if field in document and not isinstance(document[field], str):
            raise InvalidRequestError(f"{field!r} must be a string, got {_json_type(document[field])}")
    _check_parameters(document.get("parameters"), "request")
    max_dimension = (model.limits.max_body_bytes if max_body_bytes is None else max_body_bytes) // 2
    batch_rows = _validate_inputs(model, document.get("inputs"), max_dimension)
    requested_outputs = _validate_outputs(model, document.get("outputs"))
    return InferRequest(model, body, document, request_id, batch_rows, requested_outputs)


def check_request_identity(request: InferRequest, path_version: str | None) -> None:
    """A body's ``model_name`` and ``model_version``, when given, must agree with the path: the path's model,
    and its version (a route without one: any version of the model). A 400 names both. The router checks; a
    serving container, which answers with whatever model it holds, does not."""
    model = request.model
    name = request.document.get("model_name")
    if name is not None and name != model.name:
        raise InvalidRequestError(f"model_name {clip(name)} in the body contradicts the path's model {model.name!r}")
    version = request.document.get("model_version")
    if version is None:
        return
    if path_version is not None and version != path_version:
        raise InvalidRequestError(
            f"model_version {clip(version)} in the body contradicts the path's version {path_version!r}"
        )
    versions = model_versions(model)
    if version not in versions:
        known = ", ".join(repr(known) for known in versions)
        raise InvalidRequestError(
            f"model_version {clip(version)} in the body is not a version of model {model.name!r} (versions: {known})"
        )


def _validate_inputs(model: ModelConfig, inputs: Any, max_dimension: int) -> int:
    if inputs is None:
        raise InvalidRequestError("'inputs' is required: a list with one entry per model input")
    if not isinstance(inputs, list) or not inputs:
        raise InvalidRequestError(f"'inputs' must be a non-empty list, got {_json_type(inputs)}")
    seen: set[str] = set()
    batch_rows: int | None = None
    batch_owner = ""
    for index, entry in enumerate(inputs):
        if not isinstance(entry, dict):
            raise InvalidRequestError(f"inputs[{index}] must be an object, got {_json_type(entry)}")
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequestError(f"inputs[{index}]: 'name' is required and must be a non-empty string")
        spec = model.input_by_name.get(name)
        if spec is None:
            expected = ", ".join(repr(known) for known in model.input_by_name)
            raise InvalidRequestError(
                f"input {clip(name)}: unknown input for model {model.name!r} (expected {expected})"
            )
        if name in seen:
            raise InvalidRequestError(f"input {name!r}: given more than once")
        seen.add(name)
        rows = _validate_input(spec, entry, model.limits.max_batch_rows, max_dimension)
        if rows is not None:
            if batch_rows is not None and rows != batch_rows:
                raise InvalidRequestError(
                    f"input {name!r}: batch size {rows} differs from input {batch_owner!r}'s batch size {batch_rows}"
                )
            batch_rows, batch_owner = rows, name
    missing = [spec.name for spec in model.inputs if spec.name not in seen]
    if missing:
        raise InvalidRequestError(f"input {missing[0]!r}: required by model {model.name!r} but missing")
    return batch_rows if batch_rows is not None else 1


def _validate_input(spec: TensorSpec, entry: dict[str, Any], max_batch_rows: int, max_dimension: int) -> int | None:
    name = spec.name
    unknown = sorted(set(entry) - INPUT_FIELDS)
    if unknown:
        raise InvalidRequestError(f"input {name!r}: unknown field {clip(unknown[0])}")
    for required in ("shape", "datatype", "data"):
        if required not in entry:
            raise InvalidRequestError(f"input {name!r}: {required!r} is required")
    _check_parameters(entry.get("parameters"), f"input {name!r}")
    datatype = entry["datatype"]
    if datatype not in DATATYPES:
        raise InvalidRequestError(
            f"input {name!r}: datatype {clip(datatype)} is not an Open Inference Protocol datatype"
        )
    if datatype != spec.datatype:
        raise InvalidRequestError(f"input {name!r}: datatype {datatype} does not match the model's {spec.datatype}")
    shape = _validate_shape(spec, entry["shape"], max_dimension)
    rows = shape[0] if spec.has_free_batch_dim else None
    if rows is not None and rows > max_batch_rows:
        raise InvalidRequestError(f"input {name!r}: batch of {rows} rows exceeds the model's limit of {max_batch_rows}")
    expected_count = math.prod(shape)
    flat = _flatten(spec, entry["data"], shape)
    if len(flat) != expected_count:
        raise InvalidRequestError(
            f"input {name!r}: shape {list(shape)} needs {expected_count} elements but data has {len(flat)}"
        )
    _check_elements(spec, flat)
    return rows


def _validate_shape(spec: TensorSpec, shape: Any, max_dimension: int) -> tuple[int, ...]:
    name = spec.name
    if not isinstance(shape, list) or any(
        isinstance(dim, bool) or not isinstance(dim, int) or dim < 0 for dim in shape
    ):
        raise InvalidRequestError(f"input {name!r}: shape must be a list of non-negative integers, got {clip(shape)}")
    if len(shape) != len(spec.shape):
        raise InvalidRequestError(
            f"input {name!r}: shape {clip(shape)} has rank {len(shape)} but the model expects rank "
            f"{len(spec.shape)} ({_shape_text(spec.shape)})"
        )
    for axis, given in enumerate(shape):
        # Every element takes two bytes of the body at least (a digit and a comma), so no larger dimension
        # can be filled; a zero-element tensor could still name one, for a model server to allocate.
        if given > max_dimension:
            raise InvalidRequestError(
                f"input {name!r}: dimension {axis} is {clip(given)}; at most {max_dimension} (half the body limit)"
            )
    for axis, (given, declared) in enumerate(zip(shape, spec.shape, strict=True)):
        if declared not in (-1, given):
            raise InvalidRequestError(
                f"input {name!r}: shape {shape} does not match the model's {_shape_text(spec.shape)} "
                f"(dimension {axis} must be {declared})"
            )
        if declared == -1 and axis == 0 and given == 0:
            raise InvalidRequestError(f"input {name!r}: shape {shape} has an empty batch")
    return tuple(shape)


def _flatten(spec: TensorSpec, data: Any, shape: tuple[int, ...]) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidRequestError(f"input {spec.name!r}: data must be a list (flat or nested row-major)")
    if not data or not isinstance(data[0], list):
        if any(isinstance(value, list) for value in data):
            raise InvalidRequestError(f"input {spec.name!r}: data mixes lists and scalars at the top level")
        return data
    flat: list[Any] = []
    _flatten_nested(spec.name, data, shape, 0, flat)
    return flat


def _flatten_nested(name: str, data: list[Any], shape: tuple[int, ...], depth: int, flat: list[Any]) -> None:
    if depth >= len(shape) or len(data) != shape[depth]:
        expected = shape[depth] if depth < len(shape) else "no"
        raise InvalidRequestError(
            f"input {name!r}: nested data has {len(data)} entries at depth {depth} where shape {list(shape)} "
            f"expects {expected}"
        )
    if depth == len(shape) - 1:
        if any(isinstance(value, list) for value in data):
            raise InvalidRequestError(f"input {name!r}: nested data is deeper than shape {list(shape)}")
        flat.extend(data)
        return
    for child in data:
        if not isinstance(child, list):
            raise InvalidRequestError(f"input {name!r}: nested data is shallower than shape {list(shape)}")
        _flatten_nested(name, child, shape, depth + 1, flat)


def _check_elements(spec: TensorSpec, flat: list[Any]) -> None:
    datatype = spec.datatype
    if datatype == "BOOL":
        for index, value in enumerate(flat):
            if type(value) is not bool:
                raise InvalidRequestError(
                    f"input {spec.name!r}: element {index} is {clip(value)}, not a BOOL (true/false)"
                )
        return
    if datatype == "BYTES":
        for index, value in enumerate(flat):
            if type(value) is not str:
                raise InvalidRequestError(
                    f"input {spec.name!r}: element {index} is {_json_type(value)}, not BYTES (a string)"
                )
        return
    low, high = _bounds(spec)
    if datatype in FLOAT_TYPES:
        allow_non_finite = spec.allow_non_finite
        for index, value in enumerate(flat):
            kind = type(value)
            if kind is not float and kind is not int:
                raise InvalidRequestError(f"input {spec.name!r}: element {index} is {_json_type(value)}, not a number")
            if not low <= value <= high:
                _raise_out_of_range(spec, index, value, allow_non_finite)
        return
    for index, value in enumerate(flat):
        if type(value) is not int:
            raise InvalidRequestError(
                f"input {spec.name!r}: element {index} is {clip(value)}, not an integer ({datatype})"
            )
        if not low <= value <= high:
            _raise_out_of_range(spec, index, value, allow_non_finite=False)


def _bounds(spec: TensorSpec) -> tuple[float, float]:
    """The tightest of the datatype's own bounds and the declared range."""
    if spec.datatype in FLOAT_TYPES:
        high = (
            math.nextafter(FLOAT_ROUNDING_LIMIT[spec.datatype], 0.0) if spec.datatype != "FP64" else FLOAT_MAX["FP64"]
        )
        low = -high
    else:
        low, high = INTEGER_BOUNDS[spec.datatype]
    declared = spec.value_range
    if declared is not None:
        low = low if declared.minimum is None else max(low, declared.minimum)
        high = high if declared.maximum is None else min(high, declared.maximum)
    return low, high


def _raise_out_of_range(spec: TensorSpec, index: int, value: float, allow_non_finite: bool) -> None:
    name = spec.name
    if isinstance(value, float) and not math.isfinite(value):
        if allow_non_finite:
            return
        raise InvalidRequestError(f"input {name!r}: element {index} is {value}; NaN and Infinity are not allowed")
    declared = spec.value_range
    if declared is not None and (
        (declared.minimum is not None and value < declared.minimum)
        or (declared.maximum is not None and value > declared.maximum)
    ):
        raise InvalidRequestError(
            f"input {name!r}: element {index} is {clip(value)}, outside the declared range "
            f"[{_bound_text(declared.minimum, '-inf')}, {_bound_text(declared.maximum, 'inf')}]"
        )
    raise InvalidRequestError(
        f"input {name!r}: element {index} is {clip(value)}, outside what {spec.datatype} can hold"
    )


def _validate_outputs(model: ModelConfig, outputs: Any) -> tuple[str, ...]:
    if outputs is None:
        return ()
    if not isinstance(outputs, list):
        raise InvalidRequestError(f"'outputs' must be a list, got {_json_type(outputs)}")
    names: list[str] = []
    for index, entry in enumerate(outputs):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise InvalidRequestError(f"outputs[{index}] must be an object with a string 'name'")
        unknown = sorted(set(entry) - OUTPUT_FIELDS)
        if unknown:
            raise InvalidRequestError(f"output {clip(entry['name'])}: unknown field {clip(unknown[0])}")
        name = entry["name"]
        if name not in model.output_names:
            expected = ", ".join(repr(spec.name) for spec in model.outputs)
            raise InvalidRequestError(
                f"output {clip(name)}: unknown output for model {model.name!r} (expected {expected})"
            )
        if name in names:
            raise InvalidRequestError(f"output {name!r}: requested more than once")
        _check_parameters(entry.get("parameters"), f"output {name!r}")
        names.append(name)
    return tuple(names)


def _check_parameters(parameters: Any, owner: str) -> None:
    if parameters is not None and not isinstance(parameters, dict):
        raise InvalidRequestError(f"{owner}: 'parameters' must be an object, got {_json_type(parameters)}")


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(dim) for dim in shape) + "]"


def _bound_text(bound: float | None, unbounded: str) -> str:
    return unbounded if bound is None else f"{bound:g}"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
