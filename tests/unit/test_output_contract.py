"""Output contracts: the config refuses an impossible one naming the field; the check names the output, the
check and the first offending element, and leaves outputs without a contract alone."""

from __future__ import annotations

import copy
import json
import math
import re
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.contract_checks import ContractCheck
from functions.config.model_types import ModelConfig
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config, parse_models_config
from functions.domain.errors import EndpointRejectedError
from functions.domain.output_contract import OutputContractError, check_answer, has_contract

VALID: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
IRIS = load_models_config().model("iris")
assert IRIS is not None


def answer(*outputs: dict[str, Any]) -> bytes:
    return json.dumps({"model_name": "iris", "model_version": "1", "outputs": list(outputs)}).encode()


def probabilities(data: list[Any], shape: list[int] | None = None) -> dict[str, Any]:
    return {"name": "probabilities", "datatype": "FP32", "shape": shape or [len(data) // 3, 3], "data": data}


def label(data: list[Any]) -> dict[str, Any]:
    return {"name": "label", "datatype": "INT64", "shape": [len(data)], "data": data}


def breach(model: ModelConfig, body: bytes) -> OutputContractError:
    with pytest.raises(OutputContractError) as caught:
        check_answer(model, body)
    assert isinstance(caught.value, EndpointRejectedError)  # a 502 in the router's table
    return caught.value


def model_with(
    output_contract: dict[str, Any] | None, *, datatype: str = "FP32", shape: list[int] | None = None
) -> ModelConfig:
    document = copy.deepcopy(VALID)
    output: dict[str, Any] = {"name": "scores", "datatype": datatype, "shape": shape or [-1, 3]}
    if output_contract is not None:
        output["contract"] = output_contract
    document["models"][0]["outputs"] = [output, {"name": "names", "datatype": "BYTES", "shape": [-1]}]
    return parse_models_config(document, "models.json").models[0]


def test_a_good_iris_answer_passes() -> None:
    check_answer(IRIS, answer(label([0, 2]), probabilities([0.9, 0.05, 0.05, 0.0, 0.0004, 0.9996])))


def test_a_probability_above_one_names_output_check_and_element() -> None:
    error = breach(IRIS, answer(label([0]), probabilities([1.7, 0.0, 0.0])))
    assert (error.output, error.check) == ("probabilities", ContractCheck.RANGE)
    assert error.message == (
        "model 'iris' answered outside its contract: output 'probabilities' fails the range check: "
        "element [0, 0] is 1.7, above the maximum 1"
    )


def test_a_label_outside_the_classes_breaks_its_range() -> None:
    error = breach(IRIS, answer(label([0, 3]), probabilities([1, 0, 0, 0, 0, 1])))
    assert (error.output, error.check) == ("label", ContractCheck.RANGE)
    assert "element [1] is 3, above the maximum 2" in error.message


def test_a_negative_value_is_below_the_minimum() -> None:
    assert (
        "element [0, 1] is -0.1, below the minimum 0" in breach(IRIS, answer(probabilities([1.0, -0.1, 0.1]))).message
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_non_finite_probability_fails_the_finite_check(value: float) -> None:
    error = breach(IRIS, answer(probabilities([0.5, value, 0.5])))
    assert error.check is ContractCheck.FINITE
    assert f"element [0, 1] is {value!r}" in error.message


def test_nan_is_outside_a_range_even_without_finite() -> None:
    model = model_with({"range": {"min": 0, "max": 1}})
    body = json.dumps({"outputs": [{"name": "scores", "shape": [1, 3], "data": [0, math.nan, 0]}]}).encode()
    assert "element [0, 1] is nan, outside the range" in breach(model, body).message


def test_rows_that_sum_to_point_eight_fail_sum_to_one_naming_the_row() -> None:
    error = breach(IRIS, answer(probabilities([0.2, 0.3, 0.5, 0.4, 0.2, 0.2])))
    assert error.check is ContractCheck.SUM_TO_ONE
    assert error.message.endswith("[1, :] sums to 0.8, not 1 within 0.001")


def test_a_sum_within_the_tolerance_passes() -> None:
    check_answer(IRIS, answer(probabilities([0.3333, 0.3333, 0.3338])))  # 1.0004


def test_sum_to_one_along_the_first_axis() -> None:
    model = model_with({"sum_to_one": {"tolerance": 1e-6, "axis": 0}}, shape=[2, 3])
    columns_sum_to_one = [0.5, 1.0, 0.0, 0.5, 0.0, 1.0]
    body = json.dumps({"outputs": [{"name": "scores", "shape": [2, 3], "data": columns_sum_to_one}]}).encode()
    check_answer(model, body)
    rows = [0.5, 0.5, 0.0, 0.5, 0.0, 0.5]  # rows sum to 1, columns do not
    body = json.dumps({"outputs": [{"name": "scores", "shape": [2, 3], "data": rows}]}).encode()
    assert breach(model, body).message.endswith("[:, 1] sums to 0.5, not 1 within 1e-06")


def test_nested_data_is_checked_as_row_major() -> None:
    error = breach(IRIS, answer(probabilities([[0.5, 0.5, 0.0], [0.5, 0.5, 1.5]], shape=[2, 3])))
    assert "element [1, 2] is 1.5" in error.message


@pytest.mark.parametrize(
    ("output", "check", "detail"),
    [
        (probabilities([0.5, 0.5], shape=[1, 3]), ContractCheck.SHAPE, "data holds 2 elements; shape [1, 3] needs 3"),
        (
            probabilities([1, 0, 0, 0], shape=[1, 4]),
            ContractCheck.SHAPE,
            "shape [1, 4] does not fit the declared [-1, 3]",
        ),
        (probabilities([1, 0, 0], shape=[3]), ContractCheck.SHAPE, "shape [3] does not fit the declared [-1, 3]"),
        ({"name": "probabilities", "shape": [1, 3]}, ContractCheck.MALFORMED, "data is None, not a list"),
        (probabilities(["1", 0, 0]), ContractCheck.MALFORMED, "element [0, 0] is '1', not a number"),
        (probabilities([True, 0, 0]), ContractCheck.MALFORMED, "element [0, 0] is True, not a number"),
    ],
)
def test_a_malformed_output_is_named(output: dict[str, Any], check: ContractCheck, detail: str) -> None:
    error = breach(IRIS, answer(output))
    assert error.check is check
    assert error.message.endswith(detail)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{not json", "the answer is not JSON"),
        (b'{"model_name": "iris"}', "the answer has no list of outputs"),
        (b'{"outputs": {"label": [0]}}', "the answer has no list of outputs"),
        (b'{"outputs": ["label"]}', "outputs[0] is not an object"),
    ],
)
def test_an_answer_that_is_not_oip_is_malformed(body: bytes, detail: str) -> None:
    error = breach(IRIS, body)
    assert (error.output, error.check) == (None, ContractCheck.MALFORMED)
    assert error.message == f"model 'iris' answered outside its contract: fails the malformed check: {detail}"


def test_empty_outputs_and_outputs_not_asked_for_pass() -> None:
    check_answer(IRIS, answer())
    check_answer(IRIS, answer(label([1])))  # the request asked for the label only


def test_an_empty_batch_passes() -> None:
    check_answer(IRIS, answer(label([]), probabilities([], shape=[0, 3])))


def test_outputs_without_a_contract_are_not_looked_at() -> None:
    model = model_with({"finite": True})
    body = {"outputs": [{"name": "names", "shape": [1], "data": ["not", "checked"]},
                        {"name": "unknown", "data": "anything"},
                        {"name": "scores", "shape": [1, 3], "data": [0, 1, 2]}]}  # fmt: skip
    check_answer(model, json.dumps(body).encode())


def test_a_model_without_a_contract_does_not_parse_its_answer() -> None:
    model = model_with(None)
    assert not has_contract(model)
    check_answer(model, b"not even JSON")  # passed through: only a declared contract pays for parsing
    assert has_contract(IRIS)


def test_a_message_quoting_caller_sized_values_stays_clipped() -> None:
    error = breach(IRIS, answer(probabilities(["x" * 10_000, 0, 0])))
    assert len(error.message) < 400


def test_iris_and_digits_declare_their_contracts() -> None:
    config = load_models_config()
    for name, classes in (("iris", 2), ("digits", 9)):
        model = config.model(name)
        assert model is not None
        contracts = {spec.name: spec.contract for spec in model.outputs}
        assert contracts["label"] is not None
        assert contracts["label"].value_range is not None
        assert (contracts["label"].value_range.minimum, contracts["label"].value_range.maximum) == (0, classes)
        probability = contracts["probabilities"]
        assert probability is not None
        assert probability.value_range is not None
        assert (probability.value_range.minimum, probability.value_range.maximum) == (0, 1)
        assert (probability.finite, probability.sum_to_one_tolerance, probability.sum_to_one_axis) == (True, 1e-3, -1)


@pytest.mark.parametrize(
    ("contract", "datatype", "field", "message"),
    [
        ({"sum_to_one": {"tolerance": 1e-3}}, "INT64", "contract.sum_to_one", "applies to floating-point probability vectors, not a INT64 output"),
        ({"finite": True}, "INT32", "contract.finite", "applies to floating-point outputs"),
        ({"range": {"min": 0}}, "BYTES", "contract", "a contract applies to numeric outputs, not BYTES"),
        ({"range": {"min": 0}}, "BOOL", "contract", "a contract applies to numeric outputs, not BOOL"),
        ({}, "FP32", "contract", "declares no check"),
        ({"exact": True}, "FP32", "contract.exact", "unknown field"),
        ({"finite": "yes"}, "FP32", "contract.finite", "must be true or false"),
        ({"range": {}}, "FP32", "contract.range", "needs min, max or both"),
        ({"range": {"min": 2, "max": 1}}, "FP32", "contract.range", "min 2 is greater than max 1"),
        ({"range": {"min": "0"}}, "FP32", "contract.range.min", "must be a finite number"),
        ({"sum_to_one": {}}, "FP32", "contract.sum_to_one.tolerance", "is required"),
        ({"sum_to_one": {"tolerance": -1}}, "FP32", "contract.sum_to_one.tolerance", "must be between 0 and 0.5"),
        ({"sum_to_one": {"tolerance": 0.9}}, "FP32", "contract.sum_to_one.tolerance", "must be between 0 and 0.5"),
        ({"sum_to_one": {"tolerance": 1e-3, "axis": 2}}, "FP32", "contract.sum_to_one.axis", "2 is not an axis of the output's shape [-1, 3]"),
        ({"sum_to_one": {"tolerance": 1e-3, "axis": -3}}, "FP32", "contract.sum_to_one.axis", "is not an axis"),
        ({"sum_to_one": {"tolerance": 1e-3, "axis": True}}, "FP32", "contract.sum_to_one.axis", "is not an axis"),
        ({"sum_to_one": {"tolerance": 1e-3, "rows": 1}}, "FP32", "contract.sum_to_one.rows", "unknown field"),
    ],
)  # fmt: skip
def test_an_impossible_contract_is_refused_naming_the_field(
    contract: dict[str, Any], datatype: str, field: str, message: str
) -> None:
    with pytest.raises(
        ConfigError, match=rf"^models.json: models\[0\]\.outputs\[0\]\.{re.escape(field)}: .*{re.escape(message)}"
    ):
        model_with(contract, datatype=datatype)


def test_an_input_may_not_declare_a_contract() -> None:
    document = copy.deepcopy(VALID)
    document["models"][0]["inputs"][0]["contract"] = {"finite": True}
    with pytest.raises(ConfigError, match=r"models\[0\]\.inputs\[0\]\.contract: unknown field"):
        parse_models_config(document, "models.json")


def iris_with_static(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    document = copy.deepcopy(VALID)
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris.setdefault("resilience", {})["fallback"] = {"static": {"outputs": outputs}}
    return document


STATIC_PATH = r"models\[\d+\]\.resilience\.fallback\.static\.outputs"


@pytest.mark.parametrize(
    ("outputs", "field", "message"),
    [
        (
            [probabilities([0.1, 1.7, 0.1])],
            "[0].data",
            "breaks the output's contract, the range check: element [0, 1] is 1.7, above the maximum 1",
        ),
        ([probabilities([0.5, math.nan, 0.5])], "[0].data", "the finite check: element [0, 1] is nan"),
        (
            [probabilities([[0.2, 0.2, 0.4]], shape=[1, 3])],
            "[0].data",
            "the sum_to_one check: [0, :] sums to 0.8, not 1 within",
        ),
        ([label([0]), label([3]) | {"name": "probabilities"}], "[1].datatype", "is not the model's FP32"),
        ([label([3])], "[0].data", "the range check: element [0] is 3, above the maximum 2"),
        ([probabilities(["1", 0, 0])], "[0].data", "the malformed check: element [0, 0] is '1', not a number"),
    ],
)
def test_a_static_fallback_that_breaks_the_contract_is_refused(
    outputs: list[dict[str, Any]], field: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"{STATIC_PATH}{re.escape(field)}: .*{re.escape(message)}"):
        parse_models_config(iris_with_static(outputs), "models.json")


def test_a_static_fallback_inside_the_contract_loads() -> None:
    config = parse_models_config(
        iris_with_static([label([1]), probabilities([[0.1, 0.8, 0.1]], shape=[1, 3])]), "models.json"
    )
    iris = config.model("iris")
    assert iris is not None
    assert iris.resilience.static_response is not None


@pytest.mark.parametrize(
    ("row", "total"),
    [
        ([math.inf, -math.inf, 1.0], "nan"),  # math.fsum refuses inf + -inf: a breach, never a crash
        ([1e308, 1e308, 0.0], "nan"),  # math.fsum's intermediate overflow
        ([math.nan, 0.5, 0.5], "nan"),
        ([math.inf, 0.0, 0.0], "inf"),
    ],
)
def test_sums_without_finite_never_crash(row: list[float], total: str) -> None:
    model = model_with({"sum_to_one": {"tolerance": 1e-3}})
    data = [0.2, 0.3, 0.5, *row]
    body = json.dumps({"outputs": [{"name": "scores", "shape": [2, 3], "data": data}]}).encode()
    error = breach(model, body)
    assert error.check is ContractCheck.SUM_TO_ONE
    assert error.message.endswith(f"[1, :] sums to {total}, not 1 within 0.001")


def test_the_first_breach_of_many_rows_is_named() -> None:
    rows = [0.2, 0.3, 0.5] * 500 + [0.2, 0.3, 0.4] + [0.2, 0.3, 0.2] + [0.2, 0.3, 0.5] * 10
    error = breach(IRIS, answer(probabilities(rows)))
    assert error.message.endswith("[500, :] sums to 0.9, not 1 within 0.001")
    values = [0.5] * 3000
    values[2100], values[2500] = -0.25, 1.5
    assert breach(IRIS, answer(probabilities(values))).message.endswith(
        "element [700, 0] is -0.25, below the minimum 0"
    )
