"""The binary tensor data extension's codec: bodies written as tritonclient 2.73 writes them (a JSON header,
then each binary input's bytes in input order; BYTES elements as a 4-byte little-endian length and the bytes)."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest

from functions.config.models import load_models_config
from functions.domain.binary_tensors import (
    OutputEncoding,
    decode_request,
    encode_response,
    take_output_encoding,
)
from functions.domain.errors import EndpointRejectedError, InvalidRequestError
from functions.domain.validation import validate_infer_request


def binary_body(inputs: list[tuple[dict[str, Any], bytes]], **request: Any) -> tuple[bytes, str]:
    """(body, Inference-Header-Content-Length) as tritonclient's ``_get_inference_request`` builds them."""
    entries = [{**entry, "parameters": {"binary_data_size": len(raw)}} for entry, raw in inputs]
    header = json.dumps({"inputs": entries, **request}).encode()
    return header + b"".join(raw for _, raw in inputs), str(len(header))


def serialize_bytes(values: list[bytes]) -> bytes:
    return b"".join(struct.pack("<I", len(value)) + value for value in values)


def fp32(values: list[float]) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


@pytest.mark.parametrize(
    ("datatype", "raw", "expected"),
    [
        ("FP32", fp32([1.5, -2.25]), [1.5, -2.25]),
        ("FP16", struct.pack("<2e", 0.5, 65504.0), [0.5, 65504.0]),
        ("FP64", struct.pack("<2d", 0.1, 1e300), [0.1, 1e300]),
        ("INT64", struct.pack("<2q", -(2**63), 2**63 - 1), [-(2**63), 2**63 - 1]),
        ("UINT16", struct.pack("<2H", 0, 65535), [0, 65535]),
        ("INT8", struct.pack("<2b", -128, 127), [-128, 127]),
        ("BOOL", b"\x01\x00", [True, False]),
        ("BYTES", serialize_bytes([b"ab", "é".encode()]), ["ab", "é"]),
    ],
)
def test_each_datatype_decodes_to_the_data_a_json_request_carries(
    datatype: str, raw: bytes, expected: list[Any]
) -> None:
    body, length = binary_body([({"name": "x", "shape": [2], "datatype": datatype}, raw)])
    document = decode_request(body, length, None)
    assert document["inputs"] == [{"name": "x", "shape": [2], "datatype": datatype, "data": expected}]


def test_inputs_take_their_bytes_in_order_and_json_inputs_stay_as_they_are() -> None:
    header = {"inputs": [
        {"name": "a", "shape": [1], "datatype": "INT32", "parameters": {"binary_data_size": 4, "other": 1}},
        {"name": "b", "shape": [1], "datatype": "FP32", "data": [3.0]},
        {"name": "c", "shape": [2], "datatype": "UINT8", "parameters": {"binary_data_size": 2}},
    ]}  # fmt: skip
    raw = json.dumps(header).encode()
    document = decode_request(raw + struct.pack("<i", -7) + b"\x05\x06", str(len(raw)), None)
    assert document["inputs"] == [
        {"name": "a", "shape": [1], "datatype": "INT32", "parameters": {"other": 1}, "data": [-7]},
        {"name": "b", "shape": [1], "datatype": "FP32", "data": [3.0]},
        {"name": "c", "shape": [2], "datatype": "UINT8", "data": [5, 6]},
    ]


@pytest.mark.parametrize(
    ("length", "message"),
    [
        ("abc", "Inference-Header-Content-Length must be a byte count, got 'abc'"),
        ("-5", "must be a byte count"),
        ("0", "is 0 but the body is"),
        ("999999", "is 999999 but the body is"),
        ("9" * 40, "must be a byte count"),
    ],
)
def test_a_header_length_that_is_not_a_length_within_the_body_is_a_400(length: str, message: str) -> None:
    body, _ = binary_body([({"name": "x", "shape": [1], "datatype": "FP32"}, fp32([1.0]))])
    with pytest.raises(InvalidRequestError, match=message):
        decode_request(body, length, None)


def test_a_header_length_that_cuts_the_json_is_a_400_naming_json() -> None:
    body, length = binary_body([({"name": "x", "shape": [1], "datatype": "FP32"}, fp32([1.0]))])
    with pytest.raises(InvalidRequestError, match="not valid JSON"):
        decode_request(body, str(int(length) - 3), None)


def test_a_header_length_that_swallows_tensor_bytes_is_a_400() -> None:
    body, length = binary_body([({"name": "x", "shape": [1], "datatype": "FP32"}, b"    ")])
    with pytest.raises(InvalidRequestError):
        decode_request(body, str(int(length) + 4), None)


@pytest.mark.parametrize(
    ("size", "message"),
    [
        (-1, "binary_data_size must be a non-negative integer, got -1"),
        (True, "binary_data_size must be a non-negative integer, got True"),
        ("4", "binary_data_size must be a non-negative integer, got '4'"),
        (2**62, f"binary_data_size is {2**62} but only 4 bytes of the body are left"),
        (8, "binary_data_size is 8 but only 4 bytes of the body are left"),
    ],
)
def test_a_size_that_is_not_a_count_or_overruns_the_body_is_a_400_naming_the_input(size: Any, message: str) -> None:
    header = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                     "parameters": {"binary_data_size": size}}]}).encode()  # fmt: skip
    with pytest.raises(InvalidRequestError, match=f"input 'x': {message}"):
        decode_request(header + fp32([1.0]), str(len(header)), None)


def test_bytes_left_after_the_last_input_are_a_400() -> None:
    body, length = binary_body([({"name": "x", "shape": [1], "datatype": "FP32"}, fp32([1.0]))])
    with pytest.raises(InvalidRequestError, match="the body has 3 bytes after the last binary input's data"):
        decode_request(body + b"abc", length, None)


@pytest.mark.parametrize(
    ("shape", "datatype", "raw", "message"),
    [
        ([1, 4], "FP32", fp32([1.0, 2.0, 3.0]), r"shape \[1, 4\] of FP32 is 16 bytes but binary_data_size is 12"),
        ([3], "INT64", b"\x00" * 16, r"shape \[3\] of INT64 is 24 bytes but binary_data_size is 16"),
        ([2], "BOOL", b"\x01\x02", "a BOOL element is a byte 0 or 1"),
        ([1], "FP99", b"\x00", "datatype 'FP99' is not an Open Inference Protocol datatype"),
        ([-1], "FP32", b"", "shape must be a list of non-negative integers"),
        (
            [2**40, 2**40],
            "FP32",
            fp32([1.0]),
            r"shape \[1099511627776, 1099511627776\] of FP32 is 4835703278458516698824704 bytes but binary_data_size is 4",
        ),
    ],
)
def test_byte_counts_must_equal_shape_times_the_datatype_size(
    shape: Any, datatype: str, raw: bytes, message: str
) -> None:
    body, length = binary_body([({"name": "x", "shape": shape, "datatype": datatype}, raw)])
    with pytest.raises(InvalidRequestError, match=f"input 'x': {message}"):
        decode_request(body, length, None)


@pytest.mark.parametrize(
    ("shape", "raw", "message"),
    [
        ([2], serialize_bytes([b"ab"]) + b"\x01\x00", r"element 1's 4-byte length prefix runs past the input's end"),
        ([1], struct.pack("<I", 10) + b"abc", "element 0 is 10 bytes long but only 3 bytes of the input are left"),
        ([1], struct.pack("<I", 2**32 - 1) + b"abc", "element 0 is 4294967295 bytes long but only 3"),
        ([1], serialize_bytes([b"a", b"b"]), r"shape \[1\] holds 1 BYTES elements but 5 bytes follow the last"),
        ([3], serialize_bytes([b"a", b"b"]), r"shape \[3\] needs 3 BYTES elements but the data holds 2"),
        ([1], serialize_bytes([b"\xff"]), "element 0 is not UTF-8"),
    ],
)
def test_bytes_length_prefixes_must_walk_exactly_to_the_input_end(shape: list[int], raw: bytes, message: str) -> None:
    body, length = binary_body([({"name": "x", "shape": shape, "datatype": "BYTES"}, raw)])
    with pytest.raises(InvalidRequestError, match=f"input 'x': {message}"):
        decode_request(body, length, None)


def test_data_and_a_binary_size_together_are_a_400() -> None:
    header = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0],
                                     "parameters": {"binary_data_size": 4}}]}).encode()  # fmt: skip
    with pytest.raises(InvalidRequestError, match="input 'x': has both 'data' and binary_data_size"):
        decode_request(header + fp32([1.0]), str(len(header)), None)


def test_a_header_that_is_not_an_object_is_a_400() -> None:
    with pytest.raises(InvalidRequestError, match="JSON header must be a JSON object"):
        decode_request(b"[1]", "3", None)


def test_the_header_goes_through_the_body_guard() -> None:
    header = b'{"inputs": [], "inputs": []}'
    with pytest.raises(InvalidRequestError, match="repeats the key 'inputs'"):
        decode_request(header, str(len(header)), None)


IRIS = load_models_config().model("iris")


def test_a_binary_request_is_validated_by_the_json_rules() -> None:
    assert IRIS is not None
    body, length = binary_body([({"name": "input", "shape": [2, 4], "datatype": "FP32"}, fp32([0.5] * 8))])
    request = validate_infer_request(IRIS, body, header_length=length)
    assert (request.batch_rows, request.document["inputs"][0]["data"]) == (2, [0.5] * 8)
    wrong, wrong_length = binary_body([({"name": "input", "shape": [1, 4], "datatype": "FP64"}, b"\x00" * 32)])
    with pytest.raises(InvalidRequestError, match="input 'input': datatype FP64 does not match the model's FP32"):
        validate_infer_request(IRIS, wrong, header_length=wrong_length)
    nan, nan_length = binary_body([({"name": "input", "shape": [1, 4], "datatype": "FP32"}, fp32([float("nan")] * 4))])
    with pytest.raises(InvalidRequestError, match="NaN and Infinity are not allowed"):
        validate_infer_request(IRIS, nan, header_length=nan_length)


def test_output_flags_are_taken_out_of_the_request() -> None:
    document: dict[str, Any] = {
        "parameters": {"binary_data_output": True},
        "outputs": [{"name": "a", "parameters": {"binary_data": False}}, {"name": "b"}],
    }
    encoding = take_output_encoding(document)
    assert (encoding.binary("a"), encoding.binary("b"), encoding.any_binary) == (False, True, True)
    assert document == {"outputs": [{"name": "a"}, {"name": "b"}]}
    assert take_output_encoding({"inputs": []}) == OutputEncoding()


@pytest.mark.parametrize("document", [
    {"parameters": {"binary_data_output": 1}}, {"outputs": [{"name": "a", "parameters": {"binary_data": "yes"}}]},
])  # fmt: skip
def test_an_output_flag_that_is_not_a_boolean_is_a_400(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError, match="must be true or false"):
        take_output_encoding(document)


def test_binary_outputs_follow_the_json_header_in_output_order() -> None:
    answer = json.dumps({"model_name": "m", "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]},
        {"name": "p", "datatype": "FP32", "shape": [2], "data": [0.25, 0.75]},
        {"name": "s", "datatype": "BYTES", "shape": [1], "data": ["hé"]},
    ]}).encode()  # fmt: skip
    encoded = encode_response(answer, OutputEncoding(True, {"p": False}))
    assert encoded is not None
    body, length = encoded
    header = json.loads(body[:length])
    assert header["outputs"][0] == {"name": "label", "datatype": "INT64", "shape": [2],
                                    "parameters": {"binary_data_size": 16}}  # fmt: skip
    assert header["outputs"][1]["data"] == [0.25, 0.75]
    assert header["outputs"][2]["parameters"] == {"binary_data_size": 7}
    assert body[length:] == struct.pack("<2q", 0, 2) + serialize_bytes(["hé".encode()])
    assert encode_response(answer, OutputEncoding(False, {"p": False})) is None


@pytest.mark.parametrize("answer", [
    b"{not json", b'{"outputs": 3}', b'{"outputs": [{"name": "p", "datatype": "FP32", "shape": [1], "data": ["x"]}]}',
    b'{"outputs": [{"name": "p", "datatype": "INT8", "shape": [1], "data": [300]}]}',
    b'{"outputs": [{"name": "p", "datatype": "NOPE", "shape": [1], "data": [1]}]}',
])  # fmt: skip
def test_an_answer_that_cannot_be_sent_binary_is_the_endpoints_fault(answer: bytes) -> None:
    with pytest.raises(EndpointRejectedError):
        encode_response(answer, OutputEncoding(True))
