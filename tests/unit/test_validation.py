"""One test per validation rule: the error type (so the status) and the message naming input and rule."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from functions.config.model_types import ModelConfig
from functions.config.models import load_models_config, parse_model_config
from functions.domain.errors import InferenceError, InvalidRequestError, PayloadTooLargeError
from functions.domain.validation import validate_infer_request
from functions.handlers.router.responses import status_for

IRIS = load_models_config().model("iris")
ROW = [5.1, 3.5, 1.4, 0.2]


def iris() -> ModelConfig:
    assert IRIS is not None
    return IRIS


def body(*inputs: dict[str, Any], **request: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **request}).encode()


def tensor(**overrides: Any) -> dict[str, Any]:
    return {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW, **overrides}


def refused(raw: bytes, model: ModelConfig | None = None) -> InferenceError:
    with pytest.raises(InferenceError) as caught:
        validate_infer_request(model or iris(), raw)
    return caught.value


def test_validate_valid_flat_request_passes_with_batch_rows() -> None:
    request = validate_infer_request(iris(), body(tensor(shape=[2, 4], data=ROW + ROW), id="r-1"))
    assert (request.batch_rows, request.request_id, request.requested_outputs) == (2, "r-1", ())


def test_validate_valid_nested_request_passes() -> None:
    assert validate_infer_request(iris(), body(tensor(shape=[2, 4], data=[ROW, ROW]))).batch_rows == 2


def test_validate_requested_outputs_are_kept() -> None:
    request = validate_infer_request(iris(), body(tensor(), outputs=[{"name": "label"}]))
    assert request.requested_outputs == ("label",)


# (case id, body, expected error type, expected message)
RULES: list[tuple[str, bytes, type[InferenceError], str]] = [
    ("empty_body", b"", InvalidRequestError, "request body is empty"),
    ("malformed_json", b'{"inputs": [', InvalidRequestError, "request body is not valid JSON"),
    ("not_utf8", b'{"inputs": "\xff"}', InvalidRequestError, "request body is not UTF-8"),
    ("not_object", b"[1, 2]", InvalidRequestError, "request body must be a JSON object, got a list"),
    ("unknown_field", body(tensor(), extra=1), InvalidRequestError, "unknown request field 'extra'"),
    ("id_not_string", body(tensor(), id=5), InvalidRequestError, "'id' must be a string, got a number"),
    ("parameters_not_object", body(tensor(), parameters=[]), InvalidRequestError, "request: 'parameters' must be an object"),
    ("inputs_missing", b"{}", InvalidRequestError, "'inputs' is required"),
    ("inputs_not_list", b'{"inputs": {}}', InvalidRequestError, "'inputs' must be a non-empty list, got an object"),
    ("inputs_empty", b'{"inputs": []}', InvalidRequestError, "'inputs' must be a non-empty list, got a list"),
    ("input_not_object", b'{"inputs": [3]}', InvalidRequestError, "inputs[0] must be an object, got a number"),
    ("input_name_missing", body({"shape": [1, 4]}), InvalidRequestError, "inputs[0]: 'name' is required"),
    ("input_unknown", body(tensor(name="x")), InvalidRequestError, "input 'x': unknown input for model 'iris' (expected 'input')"),
    ("input_duplicated", body(tensor(), tensor()), InvalidRequestError, "input 'input': given more than once"),
    ("input_field_unknown", body(tensor(extra=1)), InvalidRequestError, "input 'input': unknown field 'extra'"),
    ("shape_missing", body({"name": "input", "datatype": "FP32", "data": ROW}), InvalidRequestError, "input 'input': 'shape' is required"),
    ("datatype_missing", body({"name": "input", "shape": [1, 4], "data": ROW}), InvalidRequestError, "input 'input': 'datatype' is required"),
    ("data_missing", body({"name": "input", "shape": [1, 4], "datatype": "FP32"}), InvalidRequestError, "input 'input': 'data' is required"),
    ("datatype_unknown", body(tensor(datatype="FLOAT")), InvalidRequestError, "input 'input': datatype 'FLOAT' is not an Open Inference Protocol datatype"),
    ("datatype_mismatch", body(tensor(datatype="INT8", data=[5, 3, 1, 0])), InvalidRequestError, "input 'input': datatype INT8 does not match the model's FP32"),
    ("shape_not_list", body(tensor(shape="1,4")), InvalidRequestError, "input 'input': shape must be a list of non-negative integers"),
    ("shape_negative", body(tensor(shape=[-1, 4])), InvalidRequestError, "input 'input': shape must be a list of non-negative integers"),
    ("shape_rank", body(tensor(shape=[4])), InvalidRequestError, "input 'input': shape [4] has rank 1 but the model expects rank 2 ([-1, 4])"),
    ("shape_fixed_dim", body(tensor(shape=[1, 3], data=ROW[:3])), InvalidRequestError, "input 'input': shape [1, 3] does not match the model's [-1, 4] (dimension 1 must be 4)"),
    ("shape_empty_batch", body(tensor(shape=[0, 4], data=[])), InvalidRequestError, "input 'input': shape [0, 4] has an empty batch"),
    ("element_count", body(tensor(shape=[2, 4])), InvalidRequestError, "input 'input': shape [2, 4] needs 8 elements but data has 4"),
    ("data_not_list", body(tensor(data="abc")), InvalidRequestError, "input 'input': data must be a list"),
    ("nested_wrong_length", body(tensor(shape=[2, 4], data=[ROW, ROW[:3]])), InvalidRequestError, "input 'input': nested data has 3 entries at depth 1 where shape [2, 4] expects 4"),
    ("nested_too_deep", body(tensor(data=[[ROW]])), InvalidRequestError, "input 'input': nested data has 1 entries at depth 1 where shape [1, 4] expects 4"),
    ("nested_mixed", body(tensor(shape=[2, 4], data=[ROW, 1])), InvalidRequestError, "input 'input': nested data is shallower than shape [2, 4]"),
    ("flat_mixed", body(tensor(data=[1.0, [2.0], 3.0, 4.0])), InvalidRequestError, "input 'input': data mixes lists and scalars at the top level"),
    ("element_not_number", body(tensor(data=[5.1, "3.5", 1.4, 0.2])), InvalidRequestError, "input 'input': element 1 is a string, not a number"),
    ("element_bool_not_number", body(tensor(data=[5.1, True, 1.4, 0.2])), InvalidRequestError, "input 'input': element 1 is a boolean, not a number"),
    ("range_above", body(tensor(data=[5.1, 3.5, 1.4, 99.0])), InvalidRequestError, "input 'input': element 3 is 99.0, outside the declared range [0, 30]"),
    ("range_below", body(tensor(data=[-0.5, 3.5, 1.4, 0.2])), InvalidRequestError, "input 'input': element 0 is -0.5, outside the declared range [0, 30]"),
    ("nan", b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [NaN, 1, 1, 1]}]}', InvalidRequestError, "input 'input': element 0 is nan; NaN and Infinity are not allowed"),
    ("infinity", b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, Infinity, 1, 1]}]}', InvalidRequestError, "input 'input': element 1 is inf; NaN and Infinity are not allowed"),
    ("batch_rows", body(tensor(shape=[1001, 4], data=ROW * 1001)), InvalidRequestError, "input 'input': batch of 1001 rows exceeds the model's limit of 1000"),
    ("outputs_not_list", body(tensor(), outputs={}), InvalidRequestError, "'outputs' must be a list, got an object"),
    ("output_unknown", body(tensor(), outputs=[{"name": "logits"}]), InvalidRequestError, "output 'logits': unknown output for model 'iris' (expected 'label', 'probabilities')"),
    ("output_duplicated", body(tensor(), outputs=[{"name": "label"}, {"name": "label"}]), InvalidRequestError, "output 'label': requested more than once"),
    ("output_without_name", body(tensor(), outputs=[{}]), InvalidRequestError, "outputs[0] must be an object with a string 'name'"),
    ("body_size", body(tensor(), id="x" * 1_048_576), PayloadTooLargeError, "bytes; model 'iris' accepts at most 1048576"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "error_type", "message"), [rule[1:] for rule in RULES], ids=[rule[0] for rule in RULES]
)
def test_validate_rule_broken_is_refused_naming_field_and_rule(
    raw: bytes, error_type: type[InferenceError], message: str
) -> None:
    error = refused(raw)
    assert type(error) is error_type
    assert message in error.message
    assert status_for(error) == (413 if error_type is PayloadTooLargeError else 400)


def typed_model(
    datatype: str, *, value_range: dict[str, float] | None = None, allow_non_finite: bool = False
) -> ModelConfig:
    spec: dict[str, Any] = {"name": "x", "datatype": datatype, "shape": [-1, 2], "allow_non_finite": allow_non_finite}
    if value_range is not None:
        spec["range"] = value_range
    return parse_model_config(
        {
            "name": "typed",
            "version": "1",
            "platform": "onnxruntime_onnx",
            "inputs": [spec],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
            "route": {"sync": "lambda"},
            "limits": {"max_body_bytes": 10_000, "max_batch_rows": 10},
        }
    )


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT8", [1, 128], "element 1 is 128, outside what INT8 can hold"),
        ("UINT8", [-1, 2], "element 0 is -1, outside what UINT8 can hold"),
        ("INT32", [1, 2.5], "element 1 is 2.5, not an integer (INT32)"),
        ("INT64", [True, 2], "element 0 is True, not an integer (INT64)"),
        ("BOOL", [True, 1], "element 1 is 1, not a BOOL (true/false)"),
        ("BYTES", ["a", 3], "element 1 is a number, not BYTES (a string)"),
        ("FP16", [1.0, 70000.0], "element 1 is 70000.0, outside what FP16 can hold"),
    ],
)
def test_validate_element_wrong_for_datatype_is_refused(datatype: str, data: list[Any], message: str) -> None:
    raw = body({"name": "x", "shape": [1, 2], "datatype": datatype, "data": data})
    assert message in refused(raw, typed_model(datatype)).message


@pytest.mark.parametrize(
    ("datatype", "data"),
    [("INT8", [-128, 127]), ("UINT64", [0, 2**64 - 1]), ("BOOL", [True, False]), ("BYTES", ["a", ""])],
)
def test_validate_element_at_datatype_limits_passes(datatype: str, data: list[Any]) -> None:
    raw = body({"name": "x", "shape": [1, 2], "datatype": datatype, "data": data})
    assert validate_infer_request(typed_model(datatype), raw).batch_rows == 1


def test_validate_non_finite_allowed_when_declared() -> None:
    raw = b'{"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [NaN, -Infinity]}]}'
    assert validate_infer_request(typed_model("FP32", allow_non_finite=True), raw).batch_rows == 1


def test_validate_integer_range_declared_is_enforced() -> None:
    raw = body({"name": "x", "shape": [1, 2], "datatype": "INT32", "data": [1, 11]})
    error = refused(raw, typed_model("INT32", value_range={"min": 0, "max": 10}))
    assert "element 1 is 11, outside the declared range [0, 10]" in error.message


def test_validate_inputs_disagreeing_on_batch_size_are_refused() -> None:
    model = parse_model_config(
        {
            "name": "pair",
            "version": "1",
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": "a", "datatype": "FP32", "shape": [-1, 1]},
                {"name": "b", "datatype": "FP32", "shape": [-1, 1]},
            ],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
            "route": {"sync": "lambda"},
            "limits": {"max_body_bytes": 10_000, "max_batch_rows": 10},
        }
    )
    missing = refused(body({"name": "a", "shape": [1, 1], "datatype": "FP32", "data": [1]}), model)
    assert "input 'b': required by model 'pair' but missing" in missing.message
    raw = body(
        {"name": "a", "shape": [1, 1], "datatype": "FP32", "data": [1]},
        {"name": "b", "shape": [2, 1], "datatype": "FP32", "data": [1, 2]},
    )
    assert "input 'b': batch size 2 differs from input 'a''s batch size 1" in refused(raw, model).message


def free_model(shape: list[int]) -> ModelConfig:
    return parse_model_config(
        {
            "name": "free",
            "version": "1",
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": shape}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1]}],
            "route": {"sync": "lambda"},
            "limits": {"max_body_bytes": 10_000, "max_batch_rows": 10},
        }
    )


@pytest.mark.parametrize("value", ["3.4028235e38", "-3.4028235e38", "3.4028234663852886e38", "3.4028235677973362e38"])
def test_validate_fp32_largest_value_as_json_writes_it_passes(value: str) -> None:
    raw = f'{{"inputs": [{{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [{value}, 0]}}]}}'.encode()
    assert validate_infer_request(typed_model("FP32"), raw).batch_rows == 1


@pytest.mark.parametrize(("datatype", "value"), [("FP32", "3.4028235677973366e38"), ("FP16", "65520.0")])
def test_validate_float_that_rounds_to_infinity_is_refused(datatype: str, value: str) -> None:
    raw = f'{{"inputs": [{{"name": "x", "shape": [1, 2], "datatype": "{datatype}", "data": [{value}, 0]}}]}}'.encode()
    assert f"outside what {datatype} can hold" in refused(raw, typed_model(datatype)).message


def test_validate_fp16_largest_value_rounding_passes() -> None:
    raw = body({"name": "x", "shape": [1, 2], "datatype": "FP16", "data": [65519.0, -65504.0]})
    assert validate_infer_request(typed_model("FP16"), raw).batch_rows == 1


@pytest.mark.parametrize("shape", [[1, 0, 10**12], [1, 10**12, 0]])
def test_validate_zero_element_tensor_with_a_huge_dimension_is_refused(shape: list[int]) -> None:
    raw = body({"name": "x", "shape": shape, "datatype": "FP32", "data": []})
    error = refused(raw, free_model([-1, -1, -1]))
    assert "at most 5000 (half the body limit)" in error.message


def test_validate_zero_element_tensor_within_the_dimension_limit_passes() -> None:
    raw = body({"name": "x", "shape": [1, 0, 5000], "datatype": "FP32", "data": []})
    assert validate_infer_request(free_model([-1, -1, -1]), raw).batch_rows == 1


def test_validate_more_numbers_than_the_model_takes_are_refused_before_parsing() -> None:
    # iris takes at most 1,000 rows of 4: a million numbers can never be valid, whatever the shape says.
    raw = body(tensor(shape=[1, 4], data=[0.5] * 1_000_000))
    error = refused(raw, dataclass_replace_limit(iris(), 8_000_000))
    assert "the model's inputs take at most" in error.message


def dataclass_replace_limit(model: ModelConfig, max_body_bytes: int) -> ModelConfig:
    return dataclasses.replace(model, limits=dataclasses.replace(model.limits, max_body_bytes=max_body_bytes))


HUGE = "x" * 4_400_000


def typed(datatype: str, data: list[Any]) -> tuple[str, bytes]:
    return datatype, body({"name": "x", "shape": [1, 2], "datatype": datatype, "data": data})


@pytest.mark.parametrize(
    ("datatype", "raw"),
    [
        ("", body(tensor(datatype=HUGE))),
        ("", body(tensor(name=HUGE))),
        ("", body(tensor(**{HUGE: 1}))),
        ("", body(tensor(), **{HUGE: 1})),
        ("", body(tensor(shape=[HUGE]))),
        ("", body(tensor(shape=[1] * 1_000_000))),
        ("", body(tensor(), outputs=[{"name": HUGE}])),
        ("", body(tensor(), outputs=[{"name": "label", HUGE: 1}])),
        typed("BOOL", [HUGE, True]),
        typed("INT32", [HUGE, 1]),
        typed("FP32", [10**4000, 1]),
        typed("INT64", [-(10**4000), 1]),
    ],
    ids=lambda value: value[:60].decode(errors="replace") if isinstance(value, bytes) else value,
)
def test_validate_echoed_values_are_clipped_so_the_error_stays_small(datatype: str, raw: bytes) -> None:
    model = typed_model(datatype) if datatype else iris()
    error = refused(raw, dataclass_replace_limit(model, len(raw)))
    assert len(error.message) < 400, error.message[:500]
