"""A model's ``capture`` block: opt-in, a sample rate in (0, 1], an allow-list of the model's own inputs."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.model_types import CaptureConfig
from functions.config.models import DEFAULT_CONFIG_PATH, parse_models_config

VALID: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())


def with_capture(capture: Any, model: str = "digits") -> tuple[dict[str, Any], int]:
    document = copy.deepcopy(VALID)
    [index] = [i for i, entry in enumerate(document["models"]) if entry["name"] == model]
    document["models"][index]["capture"] = capture
    return document, index


def test_a_model_without_a_capture_block_is_not_captured() -> None:
    document, index = with_capture(None)
    del document["models"][index]["capture"]
    digits = parse_models_config(document, "models.json").model("digits")
    assert digits is not None
    assert digits.capture is None


def test_a_capture_block_is_read_with_outputs_by_default() -> None:
    document, _ = with_capture({"sample_rate": 0.25, "inputs": ["pixels"]})
    digits = parse_models_config(document, "models.json").model("digits")
    assert digits is not None
    assert digits.capture == CaptureConfig(0.25, ("pixels",), outputs=True)


def test_outputs_alone_may_be_captured() -> None:
    document, _ = with_capture({"sample_rate": 1, "inputs": [], "outputs": True})
    digits = parse_models_config(document, "models.json").model("digits")
    assert digits is not None
    assert digits.capture == CaptureConfig(1.0, (), outputs=True)


def test_max_rows_defaults_to_100_and_may_be_set() -> None:
    document, _ = with_capture({"sample_rate": 1, "inputs": ["pixels"]})
    digits = parse_models_config(document, "models.json").model("digits")
    assert digits is not None
    assert digits.capture is not None
    assert digits.capture.max_rows == 100
    document, _ = with_capture({"sample_rate": 1, "inputs": ["pixels"], "max_rows": 1000})
    digits = parse_models_config(document, "models.json").model("digits")
    assert digits is not None
    assert digits.capture is not None
    assert digits.capture.max_rows == 1000


@pytest.mark.parametrize(
    ("capture", "field", "message"),
    [
        ({"sample_rate": 0, "inputs": ["pixels"]}, "capture.sample_rate", "0 must be a fraction in (0, 1]"),
        ({"sample_rate": 1.5, "inputs": ["pixels"]}, "capture.sample_rate", "1.5 must be a fraction in (0, 1]"),
        ({"sample_rate": True, "inputs": ["pixels"]}, "capture.sample_rate", "True must be a fraction in (0, 1]"),
        ({"inputs": ["pixels"]}, "capture.sample_rate", "is required"),
        ({"sample_rate": 0.5}, "capture.inputs", "is required"),
        ({"sample_rate": 0.5, "inputs": "pixels"}, "capture.inputs", "must be a list of the model's input names"),
        ({"sample_rate": 0.5, "inputs": ["email"]}, "capture.inputs[0]", "'email' is not an input of the model"),
        (
            {"sample_rate": 0.5, "inputs": ["pixels", "pixels"]},
            "capture.inputs[1]",
            "input 'pixels' is listed twice",
        ),
        ({"sample_rate": 0.5, "inputs": [], "outputs": "yes"}, "capture.outputs", "must be true or false"),
        ({"sample_rate": 0.5, "inputs": [], "outputs": False}, "capture", "captures nothing"),
        ({"sample_rate": 0.5, "inputs": [], "rows": 3}, "capture.rows", "unknown field"),
        ({"sample_rate": 0.5, "inputs": [], "max_rows": 0}, "capture.max_rows", "0 must be a whole number of rows"),
        ({"sample_rate": 0.5, "inputs": [], "max_rows": 1001}, "capture.max_rows", "in 1..1000"),
        ({"sample_rate": 0.5, "inputs": [], "max_rows": 2.5}, "capture.max_rows", "2.5 must be a whole number"),
        ({"sample_rate": 0.5, "inputs": [], "max_rows": True}, "capture.max_rows", "True must be a whole number"),
        ("all", "capture", "must be an object"),
    ],
)
def test_a_wrong_capture_block_is_refused_naming_its_field(capture: Any, field: str, message: str) -> None:
    document, index = with_capture(capture)
    with pytest.raises(ConfigError) as failure:
        parse_models_config(document, "models.json")
    assert f"models.json: models[{index}].{field}: " in str(failure.value)
    assert message in str(failure.value)
