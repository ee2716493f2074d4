"""The shadow worker with a real serving container behind the shadow's endpoint (the local runtime): the sample
subscription event in events/shadow, agreement, failures counted and never raised."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.onnx_model import OnnxModel
from functions.adapters.sagemaker import SageMakerBackend
from functions.config.model_types import RouteConfig
from functions.config.models import load_models_config
from functions.config.telemetry import SHADOW_SERVICE
from functions.domain.shadow import ShadowRequest, ShadowRunner
from functions.handlers.shadow.app import create_handler, subscription_lines
from local.aws import aws_client
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.sagemaker_runtime.faults import FaultSpec
from serving.service import InvocationService
from tests.functional.test_shadow_shipping import shadow_config

ROOT = Path(__file__).resolve().parents[2]
EVENT = json.loads((ROOT / "events" / "shadow" / "cloudwatch_logs_shadow_request.json").read_text())


@pytest.fixture(scope="module")
def shadow_runtime(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalSageMakerRuntime]:
    """The session runtime's environment, plus a runtime serving iris as the shadow endpoint 'iris-shadow'."""
    iris = load_models_config().model("iris")
    assert iris is not None
    assert iris.artifact is not None
    service = InvocationService(OnnxModel(iris, ROOT / iris.artifact))
    runtime = LocalSageMakerRuntime({"iris-shadow": service}).start()
    yield runtime
    runtime.stop()


def subscription_event(lines: list[str], message_type: str = "DATA_MESSAGE") -> dict[str, Any]:
    document = {"messageType": message_type, "logEvents": [{"id": str(i), "timestamp": 0, "message": line}
                                                           for i, line in enumerate(lines)]}  # fmt: skip
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()}}


def worker(tmp_path: Path, runtime: LocalSageMakerRuntime, emitted: list[dict[str, Any]]) -> Any:
    backend = SageMakerBackend(lambda _: aws_client("sagemaker-runtime", runtime.url))
    config = load_models_config(shadow_config(tmp_path, 1.0))
    return create_handler(ShadowRunner(config, "", backend, 5000), lambda line: emitted.append(json.loads(line)))


def test_the_sample_event_decodes_to_one_shadow_line() -> None:
    (line,) = subscription_lines(EVENT)
    request = ShadowRequest.from_line(line)
    assert (request.model, request.version, request.primary_version) == ("iris", "2", "1")


def test_a_control_message_carries_no_lines_and_a_foreign_event_is_refused() -> None:
    assert subscription_lines(subscription_event(["x"], "CONTROL_MESSAGE")) == []
    with pytest.raises(ValueError, match=r"no awslogs\.data"):
        subscription_lines({"Records": []})


def test_the_same_model_as_shadow_agrees(tmp_path: Path, shadow_runtime: LocalSageMakerRuntime) -> None:
    emitted: list[dict[str, Any]] = []
    counts = worker(tmp_path, shadow_runtime, emitted)(EVENT, None)
    assert counts == {"lines": 1, "shadowed": 1, "agreed": 1, "errors": 0}
    (document,) = emitted
    assert (document["service"], document["model"], document["version"]) == (SHADOW_SERVICE, "iris", "2")
    assert (document["ShadowRequests"], document["ShadowAgreements"], document["ShadowErrors"]) == (1, 1, 0)
    assert document["ShadowLatency"] > 0


def test_a_different_answer_disagrees(tmp_path: Path, shadow_runtime: LocalSageMakerRuntime) -> None:
    (line,) = subscription_lines(EVENT)
    document = json.loads(line)
    primary = json.loads(document["shadow_request"]["primary_answer"])
    primary["outputs"][0]["data"] = [2]
    document["shadow_request"]["primary_answer"] = json.dumps(primary)
    emitted: list[dict[str, Any]] = []
    counts = worker(tmp_path, shadow_runtime, emitted)(subscription_event([json.dumps(document)]), None)
    assert counts == {"lines": 1, "shadowed": 1, "agreed": 0, "errors": 0}
    assert emitted[0]["ShadowAgreements"] == 0


def test_a_failing_shadow_endpoint_is_counted_not_raised(tmp_path: Path, shadow_runtime: LocalSageMakerRuntime) -> None:
    shadow_runtime.set_fault("iris-shadow", FaultSpec(error="ModelError", error_rate=1.0))
    try:
        emitted: list[dict[str, Any]] = []
        counts = worker(tmp_path, shadow_runtime, emitted)(EVENT, None)
    finally:
        shadow_runtime.clear_faults()
    assert counts == {"lines": 1, "shadowed": 1, "agreed": 0, "errors": 1}
    assert (emitted[0]["ShadowErrors"], "ShadowAgreements" in emitted[0]) == (1, False)


def test_unknown_versions_and_malformed_lines_never_raise(
    tmp_path: Path, shadow_runtime: LocalSageMakerRuntime
) -> None:
    (line,) = subscription_lines(EVENT)
    unknown = json.loads(line)
    unknown["shadow_request"]["version"] = "1"  # the primary: not a shadow
    emitted: list[dict[str, Any]] = []
    counts = worker(tmp_path, shadow_runtime, emitted)(subscription_event([json.dumps(unknown), "not json"]), None)
    assert counts == {"lines": 2, "shadowed": 1, "agreed": 0, "errors": 1}
    assert [document["ShadowErrors"] for document in emitted] == [1]


def test_a_shadow_without_a_serverless_route_is_an_error(tmp_path: Path, shadow_runtime: LocalSageMakerRuntime) -> None:
    # The config file refuses such a shadow (functions/config/version_reader.py); a config built in code
    # still meets the worker's own check.
    config = load_models_config(shadow_config(tmp_path, 1.0))
    iris = config.models[0]
    [shadow] = iris.other_versions
    in_lambda = dataclasses.replace(shadow, route=RouteConfig("lambda", None, None))
    config = dataclasses.replace(config, models=(dataclasses.replace(iris, other_versions=(in_lambda,)),))
    backend = SageMakerBackend(lambda _: aws_client("sagemaker-runtime", shadow_runtime.url))
    runner = ShadowRunner(config, "", backend, 5000)
    result = runner.run(ShadowRequest.from_line(subscription_lines(EVENT)[0]))
    assert (result.error, result.agreed) == ("a shadow needs a serverless route", None)


def test_a_shadow_answer_outside_the_contract_is_a_shadow_error(
    tmp_path: Path, shadow_runtime: LocalSageMakerRuntime
) -> None:
    # The shadow's answer agrees with nothing: a probability of 1.7 would otherwise just disagree.
    (line,) = subscription_lines(EVENT)
    primary = json.loads(json.loads(line)["shadow_request"]["primary_answer"])
    primary["outputs"][1]["data"] = [1.7, 0.0, 0.0]
    shadow_runtime.set_fault("iris-shadow", FaultSpec(answer=primary))
    try:
        document = json.loads(line)
        document["shadow_request"]["primary_answer"] = json.dumps(primary)  # the same answer on both sides
        emitted: list[dict[str, Any]] = []
        counts = worker(tmp_path, shadow_runtime, emitted)(subscription_event([json.dumps(document)]), None)
        result = ShadowRunner(
            load_models_config(shadow_config(tmp_path, 1.0)),
            "",
            SageMakerBackend(lambda _: aws_client("sagemaker-runtime", shadow_runtime.url)),
            5000,
        ).run(ShadowRequest.from_line(json.dumps(document)))
    finally:
        shadow_runtime.clear_faults()
    assert counts == {"lines": 1, "shadowed": 1, "agreed": 0, "errors": 1}
    assert (emitted[0]["ShadowErrors"], "ShadowAgreements" in emitted[0]) == (1, False)
    assert emitted[0]["ShadowLatency"] > 0  # it answered: its latency still counts
    assert result.agreed is None
    assert result.error is not None
    assert result.error == (
        "OutputContractError: model 'iris' answered outside its contract: output 'probabilities' fails the range "
        "check: element [0, 0] is 1.7, above the maximum 1"
    )
