"""functions/domain/shadow.py: the sample, the shadow line, and the per-output comparison."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.config.model_types import ShadowConfig, TensorSpec
from functions.domain.shadow import (
    SAMPLE_BUCKETS,
    ShadowKey,
    ShadowRequest,
    compare_answers,
    sampled,
    shadow_metrics_document,
)

OUTPUTS = (TensorSpec("label", "INT64", (-1,)), TensorSpec("probabilities", "FP32", (-1, 3)))


def answer(label: list[Any], probabilities: list[Any], shape: list[int] | None = None) -> str:
    return json.dumps({"outputs": [
        {"name": "label", "datatype": "INT64", "shape": [len(label)], "data": label},
        {"name": "probabilities", "datatype": "FP32", "shape": shape or [len(label), 3], "data": probabilities},
    ]})  # fmt: skip


def test_the_sample_is_its_rate_over_many_keys_and_stable_per_key() -> None:
    keys = [ShadowKey(None, f"body {index}".encode()) for index in range(20_000)]
    share = sum(sampled(key, "iris", "3", 0.25) for key in keys) / len(keys)
    # Binomial(20000, 0.25): sd 0.0031; 4 sd.
    assert abs(share - 0.25) < 0.0124
    assert [sampled(key, "iris", "3", 0.25) for key in keys[:100]] == [
        sampled(key, "iris", "3", 0.25) for key in keys[:100]
    ]


def test_a_sticky_key_decides_whatever_the_body_and_the_rate_bounds_hold() -> None:
    decisions = {sampled(ShadowKey("order-17", f"{index}".encode()), "iris", "3", 0.5) for index in range(50)}
    assert len(decisions) == 1
    assert all(sampled(ShadowKey(None, f"{index}".encode()), "iris", "3", 1.0) for index in range(200))
    assert not any(sampled(ShadowKey(None, f"{index}".encode()), "iris", "3", 0.5 / SAMPLE_BUCKETS)
                   for index in range(200))  # fmt: skip


def test_the_caller_and_the_model_are_part_of_the_key() -> None:
    def share(model: str, caller: str) -> list[bool]:
        return [sampled(ShadowKey(str(index), b"", caller), model, "3", 0.5) for index in range(64)]

    assert share("iris", "a") != share("iris", "b")
    assert share("iris", "a") != share("digits", "a")


def test_a_line_round_trips() -> None:
    request = ShadowRequest("iris", "3", "1", None, '{"inputs": []}', answer([0], [1, 0, 0]), 4.5)
    line = request.line()
    assert json.loads(line)["shadow_request"]["model"] == "iris"
    assert ShadowRequest.from_line(line) == request


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"other": 1}', "not a shadow line"),
        ("[1]", "not a shadow line"),
        ('{"shadow_request": {"model": 1}}', "field 'model' must be a string"),
        (
            '{"shadow_request": {"model": "m", "version": "3", "primary_version": "1", "request": "{}", '
            '"primary_answer": "{}", "correlation_id": 5, "primary_latency_ms": 1}}',
            "'correlation_id' must be a string or null",
        ),
        (
            '{"shadow_request": {"model": "m", "version": "3", "primary_version": "1", "request": "{}", '
            '"primary_answer": "{}", "correlation_id": null, "primary_latency_ms": true}}',
            "'primary_latency_ms' must be a number",
        ),
    ],
)
def test_a_malformed_line_is_a_value_error_naming_the_field(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ShadowRequest.from_line(line)


def test_a_malformed_line_that_is_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="Expecting value"):
        ShadowRequest.from_line("START RequestId: 1")


def test_the_same_answer_agrees() -> None:
    same = answer([0, 2], [0.9, 0.1, 0.0, 0.0, 0.2, 0.8])
    assert compare_answers(same, same.encode(), OUTPUTS, ShadowConfig(1.0)).agreed


def test_floats_agree_within_the_outputs_tolerance_only() -> None:
    primary = answer([0], [0.9, 0.1, 0.0])
    shadow = answer([0], [0.86, 0.14, 0.0])
    assert compare_answers(primary, shadow, OUTPUTS, ShadowConfig(1.0, {"probabilities": 0.05})).agreed
    verdict = compare_answers(primary, shadow, OUTPUTS, ShadowConfig(1.0))  # the default: 1e-6
    assert verdict.disagreements == ("probabilities: value 0: 0.9 vs 0.86",)


def test_integers_compare_exactly_whatever_the_tolerance() -> None:
    verdict = compare_answers(answer([0], [1, 0, 0]), answer([1], [1, 0, 0]), OUTPUTS, ShadowConfig(1.0, {"label": 5}))
    assert verdict.disagreements == ("label: value 0: 0 vs 1",)


def test_shapes_must_match_and_a_missing_output_disagrees() -> None:
    flat = answer([0], [1, 0, 0], shape=[3])
    assert compare_answers(answer([0], [1, 0, 0]), flat, OUTPUTS, ShadowConfig(1.0)).disagreements == (
        "probabilities: shape [1, 3] != [3]",
    )
    only_label = json.dumps({"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]})
    assert compare_answers(answer([0], [1, 0, 0]), only_label, OUTPUTS, ShadowConfig(1.0)).disagreements == (
        "probabilities: only the primary answered it",
    )


def test_nan_agrees_only_with_nan() -> None:
    assert compare_answers(answer([0], ["NaN", 0, 0]), answer([0], ["NaN", 0, 0]), OUTPUTS, ShadowConfig(1.0)).agreed
    assert not compare_answers(
        answer([0], [float("nan"), 0, 0]), answer([0], [0.0, 0, 0]), OUTPUTS, ShadowConfig(1.0, {"probabilities": 1})
    ).agreed


@pytest.mark.parametrize("shadow", ["<html>busy</html>", '{"error": "x"}', '{"outputs": [{"data": []}]}'])
def test_a_shadow_answer_that_is_not_oip_raises(shadow: str) -> None:
    with pytest.raises(ValueError, match="the shadow answer"):
        compare_answers(answer([0], [1, 0, 0]), shadow, OUTPUTS, ShadowConfig(1.0))


def test_the_metrics_document_is_emf_on_service_model_version() -> None:
    document = shadow_metrics_document(
        "svc", "iris", "3", {"ShadowRequests": 1, "ShadowLatency": 4.2}, timestamp_ms=5, namespace="NS"
    )
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Dimensions"] == [["service", "model", "version"]]
    assert directive["Metrics"] == [
        {"Name": "ShadowRequests", "Unit": "Count"},
        {"Name": "ShadowLatency", "Unit": "Milliseconds"},
    ]
    assert (document["model"], document["version"], document["ShadowLatency"]) == ("iris", "3", 4.2)
