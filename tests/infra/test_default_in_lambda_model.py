"""The default config's in-Lambda model (digits) in both stages: the router carries the onnxruntime and model
layers, the model has no SageMaker stack, and its SLO alarms live in the platform stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from tests.helpers.synth import Synthesized, ref_id, synthesize

POWERTOOLS_ARN_PREFIX = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-"


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


def router_props(synth: Synthesized) -> dict[str, Any]:
    [router] = synth.platform.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    props: dict[str, Any] = router["Properties"]
    return props


def test_the_default_config_routes_a_model_to_the_router() -> None:
    assert [model.name for model in load_models_config().models if model.route.sync == "lambda"] == ["digits"]


def test_the_router_carries_the_onnxruntime_and_model_layers(stage: Synthesized) -> None:
    props = router_props(stage)
    layers = props["Layers"]
    [powertools] = [layer for layer in layers if isinstance(layer, str)]
    assert powertools.startswith(POWERTOOLS_ARN_PREFIX)
    attached = {ref_id(layer) for layer in layers if not isinstance(layer, str)}
    # The router's layers; the drift job's baselines layer (iris captures) is not the router's.
    versions = {k: v for k, v in stage.platform.resources("AWS::Lambda::LayerVersion").items() if "Drift" not in k}
    assert attached == set(versions)
    descriptions = sorted(version["Properties"]["Description"] for version in versions.values())
    assert descriptions == [
        "Model files for digits v1",
        "onnxruntime + numpy for the in-Lambda model tier (manylinux aarch64)",
    ]
    for version in versions.values():
        assert version["Properties"]["CompatibleArchitectures"] == props["Architectures"]
        assert version["Properties"]["CompatibleRuntimes"] == [props["Runtime"]]
    assert props["Environment"]["Variables"]["MODEL_ROOT"] == "/opt"


def test_the_in_lambda_model_has_no_sagemaker_stack(stage: Synthesized) -> None:
    assert sorted(stage.models) == ["iris"]
    for stack in stage.all:
        for resource in ("AWS::SageMaker::Endpoint", "AWS::SageMaker::Model"):
            assert "digits" not in json.dumps(stack.resources(resource)).lower()


def test_the_in_lambda_model_has_its_slo_alarms_in_the_platform(stage: Synthesized) -> None:
    names = [
        alarm["Properties"].get("AlarmName", logical_id)
        for logical_id, alarm in stage.platform.resources("AWS::CloudWatch::Alarm").items()
        if "Digits" in logical_id
    ]
    assert names, "no alarm for digits in the platform stack"
    assert all("digits" in json.dumps(name).lower() for name in names)


def test_a_non_primary_version_on_the_in_lambda_tier_gets_the_layers(tmp_path: Path) -> None:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    document["models"] = [model for model in document["models"] if model["name"] == "iris"]
    document["models"][0]["versions"] = [{"version": "2", "route": {"sync": "lambda"}}]
    path = tmp_path / "models.json"
    path.write_text(json.dumps(document))
    models = load_models_config(path)
    assert [(m.name, m.version) for m in models.in_lambda_models()] == [("iris", "2")]
    synth = synthesize("dev", tmp_path / "out", models=models, model_package_dir=tmp_path / "packages")
    descriptions = sorted(
        v["Properties"]["Description"]
        for k, v in synth.platform.resources("AWS::Lambda::LayerVersion").items()
        if "Drift" not in k
    )
    assert descriptions == [
        "Model files for iris v2",
        "onnxruntime + numpy for the in-Lambda model tier (manylinux aarch64)",
    ]
