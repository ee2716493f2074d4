"""The capture line of one answered request: at most ``max_rows`` evenly spaced rows of each tensor, flat
row-major, whether the request's data is flat or nested, the same rows of the inputs and the outputs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.config.model_types import CaptureConfig
from functions.domain.capture import capture_line, picked_rows


def line(request: dict[str, Any], answer: dict[str, Any] | None, capture: CaptureConfig) -> dict[str, Any]:
    body = None if answer is None else json.dumps(answer).encode()
    record: dict[str, Any] = json.loads(capture_line("iris", "1", request, body, capture, timestamp=12.5))
    return record


def iris_request(rows: int, *, nested: bool) -> dict[str, Any]:
    table = [[float(row), float(row) + 0.25, float(row) + 0.5, float(row) + 0.75] for row in range(rows)]
    data: list[Any] = table if nested else [value for row in table for value in row]
    return {"inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": data}]}


def iris_answer(rows: int) -> dict[str, Any]:
    return {
        "model_name": "iris",
        "outputs": [
            {"name": "label", "shape": [rows], "datatype": "INT64", "data": list(range(rows))},
            {
                "name": "probabilities",
                "shape": [rows, 3],
                "datatype": "FP32",
                "data": [[float(row), 0.0, 1.0] for row in range(rows)],
            },
        ],
    }


@pytest.mark.parametrize(("rows", "max_rows", "expected"), [(3, 5, [0, 1, 2]), (10, 4, [0, 2, 5, 7]), (1, 1, [0])])
def test_rows_are_all_up_to_the_cap_else_evenly_spaced_from_the_first(
    rows: int, max_rows: int, expected: list[int]
) -> None:
    assert list(picked_rows(rows, max_rows)) == expected


@pytest.mark.parametrize("nested", [False, True])
def test_a_batch_over_the_cap_keeps_the_same_evenly_spaced_rows_of_inputs_and_outputs(nested: bool) -> None:
    record = line(iris_request(1000, nested=nested), iris_answer(1000), CaptureConfig(1.0, ("input",), True, 4))
    assert record["inputs"]["input"]["shape"] == [4, 4]
    assert record["inputs"]["input"]["data"] == [
        value for row in (0, 250, 500, 750) for value in (row, row + 0.25, row + 0.5, row + 0.75)
    ]
    assert record["outputs"]["label"] == {"shape": [4], "data": [0, 250, 500, 750]}
    assert record["outputs"]["probabilities"] == {
        "shape": [4, 3],
        "data": [value for row in (0, 250, 500, 750) for value in (row, 0.0, 1.0)],
    }


def test_a_batch_under_the_cap_is_kept_whole_and_the_record_names_model_version_and_time() -> None:
    record = line(iris_request(2, nested=True), None, CaptureConfig(1.0, ("input",), True))
    assert record == {
        "capture": 1,
        "model": "iris",
        "version": "1",
        "timestamp": 12.5,
        "inputs": {"input": {"shape": [2, 4], "data": [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]}},
    }


def test_a_tensor_nested_deeper_than_its_rows_is_flattened_row_by_row() -> None:
    image = [[[float(row), 1.0], [2.0, 3.0]] for row in range(6)]
    request = {"inputs": [{"name": "image", "shape": [6, 2, 2], "datatype": "FP32", "data": image}]}
    record = line(request, None, CaptureConfig(1.0, ("image",), False, 3))
    assert record["inputs"]["image"] == {
        "shape": [3, 2, 2],
        "data": [0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0],
    }


def test_a_scalar_output_is_kept_as_it_is() -> None:
    answer = {"outputs": [{"name": "score", "shape": [], "datatype": "FP32", "data": [0.5]}]}
    record = line({"inputs": []}, answer, CaptureConfig(1.0, (), True))
    assert record["outputs"] == {"score": {"shape": [], "data": [0.5]}}
