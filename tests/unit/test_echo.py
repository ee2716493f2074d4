"""Echoed caller values and error messages stay small as the error body writes them: JSON, ASCII only."""

from __future__ import annotations

import json

import pytest

from functions.domain.echo import MAX_ERROR_MESSAGE, clip, clip_message

# One character of each JSON width: 1 (plain), 2 ('"' as \"), 6 (a control or non-ASCII one as \uXXXX),
# 12 (an astral one as a surrogate pair).
CHARACTERS = ["x", '"', "\x01", "é", "😀"]


@pytest.mark.parametrize("character", CHARACTERS)
def test_a_message_of_any_characters_is_under_1_kb_as_an_error_body(character: str) -> None:
    message = clip_message(character * 10_000)
    assert len(json.dumps({"error": message})) < 1024
    assert message.endswith("… (10000 characters)")


@pytest.mark.parametrize("character", CHARACTERS)
def test_two_clipped_values_in_one_message_stay_under_1_kb(character: str) -> None:
    # As validation quotes an output's name and its unknown field: each clip alone is within its 64 characters.
    huge = character * 200_000
    message = clip_message(f"output {clip(huge)}: unknown field {clip(huge)}")
    assert len(json.dumps({"error": message})) < 1024


def test_the_cut_keeps_as_much_as_fits() -> None:
    message = clip_message("é" * 1_000)
    kept = message.split("…")[0]
    assert len(json.dumps(kept)) - 2 <= MAX_ERROR_MESSAGE < len(json.dumps(kept + "é")) - 2


def test_a_message_that_fits_is_unchanged() -> None:
    message = "input 'input': datatype 'FP99' is not an Open Inference Protocol datatype é😀"
    assert clip_message(message) == message
    assert clip_message("x" * MAX_ERROR_MESSAGE) == "x" * MAX_ERROR_MESSAGE
