"""The Open Inference Protocol's binary tensor data extension (KServe v2 / Triton), both ways.

A request body is a JSON header of ``Inference-Header-Content-Length`` bytes followed by raw tensor bytes: an
input whose ``parameters`` hold ``binary_data_size: N`` takes the next N bytes of that tail, in input order.
Fixed-size datatypes are little-endian row-major elements; a BYTES element is a 4-byte little-endian length
followed by that many bytes. :func:`decode_request` turns such a body into the document a JSON request would
have been (each binary input's ``data`` a flat list), so that it is validated by exactly the JSON rules; what it
checks itself is the framing: the header length, every size against the bytes left, each input's byte count
against ``shape`` x the datatype's size, BYTES length prefixes walking exactly to the input's end, and no byte
left over. A BYTES element reaches the model as a JSON string, so it must be UTF-8.

A response output is sent binary when the request asks for it (``"parameters": {"binary_data": true}`` on the
output, or ``"binary_data_output": true`` in the request's parameters for every output not saying otherwise):
:func:`take_output_encoding` takes those flags out of the request and :func:`encode_response` writes the
answer as a JSON header (each binary output carrying ``binary_data_size``) followed by the outputs' bytes.

Example:
    >>> header = b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}'
    >>> decode_request(header + struct.pack("<f", 1.5), str(len(header)), None)["inputs"][0]["data"]
    [1.5]
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from typing import Any, Final

from functions.config.datatypes import DATATYPES
from functions.domain.body_guard import parse_json_body
from functions.domain.echo import clip
from functions.domain.errors import EndpointRejectedError, InvalidRequestError

HEADER_LENGTH: Final[str] = "Inference-Header-Content-Length"
# Triton's SageMaker convention: the header length travels in the content type, which is all SageMaker passes on.
SAGEMAKER_BINARY_TYPE: Final[str] = "application/vnd.sagemaker-triton.binary+json"
BINARY_SIZE: Final[str] = "binary_data_size"
# struct's little-endian standard-size codes of each fixed-size datatype.
FORMATS: Final[dict[str, str]] = {
    "BOOL": "?", "INT8": "b", "UINT8": "B", "INT16": "h", "UINT16": "H", "INT32": "i", "UINT32": "I",
    "INT64": "q", "UINT64": "Q", "FP16": "e", "FP32": "f", "FP64": "d",
}  # fmt: skip
ELEMENT_BYTES: Final[dict[str, int]] = {datatype: struct.calcsize("<" + code) for datatype, code in FORMATS.items()}
_PREFIX: Final[struct.Struct] = struct.Struct("<I")
_BOOL_BYTES: Final[bytes] = b"\x00\x01"


def header_length(value: str, body_bytes: int) -> int:
    """``Inference-Header-Content-Length`` as a byte count within the body, or a 400 saying what it is."""
    text = value.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise InvalidRequestError(f"{HEADER_LENGTH} must be a byte count, got {clip(value)}")
    length = int(text)
    if not 0 < length <= body_bytes:
        raise InvalidRequestError(
            f"{HEADER_LENGTH} is {length} but the body is {body_bytes} bytes; the JSON header must be 1 to "
            f"{body_bytes} bytes of it"
        )
    return length


def decode_request(body: bytes, length_header: str, max_items: int | None) -> dict[str, Any]:
    """The request document of a binary body: each binary input's bytes decoded into its ``data``."""
    length = header_length(length_header, len(body))
    document = parse_json_body(body[:length], max_items)
    if not isinstance(document, dict):
        raise InvalidRequestError("the request's JSON header must be a JSON object")
    tail = memoryview(body)[length:]
    offset = 0
    inputs = document.get("inputs")
    for index, entry in enumerate(inputs if isinstance(inputs, list) else []):
        parameters = entry.get("parameters") if isinstance(entry, dict) else None
        if not isinstance(parameters, dict) or BINARY_SIZE not in parameters:
            continue
        name = clip(entry.get("name")) if isinstance(entry.get("name"), str) else f"inputs[{index}]"
        size = parameters.pop(BINARY_SIZE)
        if not parameters:
            del entry["parameters"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidRequestError(f"input {name}: {BINARY_SIZE} must be a non-negative integer, got {clip(size)}")
        if "data" in entry:
            raise InvalidRequestError(f"input {name}: has both 'data' and {BINARY_SIZE}; send its data one way")
        if size > len(tail) - offset:
            raise InvalidRequestError(
                f"input {name}: {BINARY_SIZE} is {size} but only {len(tail) - offset} bytes of the body are left"
            )
        entry["data"] = decode_tensor(name, entry.get("datatype"), entry.get("shape"), tail[offset : offset + size])
        offset += size
    if offset != len(tail):
        raise InvalidRequestError(
            f"the body has {len(tail) - offset} bytes after the last binary input's data; "
            f"{HEADER_LENGTH} or a {BINARY_SIZE} is wrong"
        )
    return document


def decode_tensor(name: str, datatype: Any, shape: Any, data: memoryview) -> list[Any]:
    """``data`` as the flat list a JSON request would carry, once its size agrees with ``shape``."""
    if datatype not in DATATYPES:
        raise InvalidRequestError(f"input {name}: datatype {clip(datatype)} is not an Open Inference Protocol datatype")
    if not isinstance(shape, list) or any(
        isinstance(dim, bool) or not isinstance(dim, int) or dim < 0 for dim in shape
    ):
        raise InvalidRequestError(f"input {name}: shape must be a list of non-negative integers, got {clip(shape)}")
    elements = math.prod(shape)
    if datatype == "BYTES":
        return _decode_bytes(name, shape, elements, data)
    expected = elements * ELEMENT_BYTES[datatype]
    if len(data) != expected:
        raise InvalidRequestError(
            f"input {name}: shape {clip(shape)} of {datatype} is {expected} bytes but {BINARY_SIZE} is {len(data)}"
        )
    if datatype == "BOOL" and bytes(data).translate(None, _BOOL_BYTES):
        raise InvalidRequestError(f"input {name}: a BOOL element is a byte 0 or 1")
    return list(struct.unpack(f"<{elements}{FORMATS[datatype]}", data))


def _decode_bytes(name: str, shape: list[int], elements: int, data: memoryview) -> list[str]:
    values: list[str] = []
    offset = 0
    while offset < len(data):
        index = len(values)
        if index == elements:
            raise InvalidRequestError(
                f"input {name}: shape {clip(shape)} holds {elements} BYTES elements but "
                f"{len(data) - offset} bytes follow the last of them"
            )
        if len(data) - offset < _PREFIX.size:
            raise InvalidRequestError(f"input {name}: element {index}'s 4-byte length prefix runs past the input's end")
        (size,) = _PREFIX.unpack_from(data, offset)
        offset += _PREFIX.size
        if size > len(data) - offset:
            raise InvalidRequestError(
                f"input {name}: element {index} is {size} bytes long but only {len(data) - offset} bytes of the "
                "input are left"
            )
        try:
            values.append(str(data[offset : offset + size], "utf-8"))
        except UnicodeDecodeError:
            raise InvalidRequestError(
                f"input {name}: element {index} is not UTF-8 (BYTES reach the model as JSON strings)"
            ) from None
        offset += size
    if len(values) != elements:
        raise InvalidRequestError(
            f"input {name}: shape {clip(shape)} needs {elements} BYTES elements but the data holds {len(values)}"
        )
    return values


@dataclass(frozen=True)
class OutputEncoding:
    """Which outputs a request wants binary: ``default`` for every output, ``overrides`` by name."""

    default: bool = False
    overrides: dict[str, bool] = field(default_factory=dict)

    def binary(self, name: str) -> bool:
        return self.overrides.get(name, self.default)

    @property
    def any_binary(self) -> bool:
        return self.default or any(self.overrides.values())


def take_output_encoding(document: dict[str, Any]) -> OutputEncoding:
    """The binary-output flags of ``document``, taken out of it (what goes on to the model is plain JSON)."""
    default = _take_flag(document.get("parameters"), "binary_data_output", "request")
    overrides: dict[str, bool] = {}
    outputs = document.get("outputs")
    for entry in outputs if isinstance(outputs, list) else []:
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str):
            flag = _take_flag(entry.get("parameters"), "binary_data", f"output {clip(name)}")
            if flag is not None:
                overrides[name] = flag
    for owner in [document, *(outputs if isinstance(outputs, list) else [])]:
        if isinstance(owner, dict) and owner.get("parameters") == {}:
            del owner["parameters"]
    return OutputEncoding(bool(default), overrides)


def _take_flag(parameters: Any, key: str, owner: str) -> bool | None:
    if not isinstance(parameters, dict) or key not in parameters:
        return None
    flag = parameters.pop(key)
    if not isinstance(flag, bool):
        raise InvalidRequestError(f"{owner}: parameter {key!r} must be true or false, got {clip(flag)}")
    return flag


def encode_response(answer: bytes, encoding: OutputEncoding) -> tuple[bytes, int] | None:
    """``answer`` (an OIP JSON response) with the outputs ``encoding`` wants binary moved to a tail after the
    JSON header, and the header's length; None when no output of it is binary."""
    try:
        document = json.loads(answer)
    except ValueError:
        document = None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list):
        raise EndpointRejectedError("the endpoint's answer is not an OIP response with a list of outputs")
    tail: list[bytes] = []
    for output in outputs:
        if not isinstance(output, dict) or not encoding.binary(str(output.get("name"))):
            continue
        raw = encode_tensor(output)
        output.pop("data", None)
        output["parameters"] = {**(output.get("parameters") or {}), BINARY_SIZE: len(raw)}
        tail.append(raw)
    if not tail:
        return None
    header = json.dumps(document, separators=(",", ":")).encode()
    return header + b"".join(tail), len(header)


def encode_tensor(output: dict[str, Any]) -> bytes:
    """An answered output's flat ``data`` as the extension's bytes; a 502 when the endpoint's answer is not
    data of its datatype."""
    datatype, data = output.get("datatype"), output.get("data")
    name = clip(output.get("name"))
    try:
        if not isinstance(data, list):
            raise TypeError("data is not a list")
        if datatype == "BYTES":
            pieces = [value.encode() if isinstance(value, str) else bytes(value) for value in data]
            return b"".join(_PREFIX.pack(len(piece)) + piece for piece in pieces)
        return struct.pack(f"<{len(data)}{FORMATS[str(datatype)]}", *data)
    except (KeyError, TypeError, ValueError, OverflowError, struct.error) as error:
        raise EndpointRejectedError(
            f"the endpoint answered output {name} that cannot be sent binary as {clip(datatype)}: {clip(str(error))}"
        ) from None
