"""The stage's stack layout: a platform stack and one stack per SageMaker-routed model, tied by SSM parameters
and names derived from the stage config, never by stack exports; CloudFormation's limits checked at synth."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from infra import app as cdk_app
from infra.config.types import ALARM_TOPICS
from infra.constructs.platform_parameters import ALARM_TOPIC_VALUES, PARAMETER_ROOT, PlatformValue
from infra.stack_limits import StackLimitError, StackSize, check_stack_limits, template_size
from infra.stacks.naming import model_stack_name, model_stack_names
from tests.helpers.synth import Synthesized


def test_a_stage_is_a_platform_stack_and_a_stack_per_model(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        assert [stack.name for stack in synth.all] == [
            f"InferenceRouter-{synth.stage}",
            f"InferenceRouter-{synth.stage}-model-iris",
        ]
        assert not synth.platform.resources("AWS::SageMaker::Endpoint")
        assert len(synth.models["iris"].resources("AWS::SageMaker::Endpoint")) == 2


def test_no_stack_exports_or_imports_a_value(dev: Synthesized, prod: Synthesized) -> None:
    # An imported export locks the exporting stack: CloudFormation refuses to change or delete it.
    for synth in (dev, prod):
        for stack in synth.all:
            text = stack.template_path.read_text()
            assert "Fn::ImportValue" not in text, stack.name
            assert all("Export" not in output for output in stack.json.get("Outputs", {}).values()), stack.name


def test_model_stacks_read_each_platform_value_from_the_parameter_the_platform_writes(prod: Synthesized) -> None:
    published = {resource["Properties"]["Name"] for resource in prod.platform.resources("AWS::SSM::Parameter").values()}
    assert published == {f"{PARAMETER_ROOT}/prod/{value.value}" for value in PlatformValue}
    read = {
        parameter["Default"]
        for logical_id, parameter in prod.models["iris"].json["Parameters"].items()
        if logical_id.startswith("Platform")
    }
    # iris has an async endpoint and alarms on both topics, so it reads every value.
    assert read == published


def test_every_alarm_topic_has_a_published_value() -> None:
    assert set(ALARM_TOPIC_VALUES) == set(ALARM_TOPICS)


def test_model_stacks_deploy_after_the_platform_and_depend_on_nothing_else(dev: Synthesized) -> None:
    manifest = json.loads((dev.outdir / "manifest.json").read_text())
    stacks = {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    }
    model = manifest["artifacts"]["InferenceRouter-dev-model-iris"]
    assert {dependency for dependency in model["dependencies"] if dependency in stacks} == {"InferenceRouter-dev"}
    platform = manifest["artifacts"]["InferenceRouter-dev"]
    assert not {dependency for dependency in platform.get("dependencies", []) if dependency in stacks}


def test_model_stack_names_come_from_the_stage_and_model_names() -> None:
    assert model_stack_name("prod", "iris") == "InferenceRouter-prod-model-iris"
    assert model_stack_name("prod", "fraud_v2.onnx") == "InferenceRouter-prod-model-fraud-v2-onnx"
    with pytest.raises(
        ValueError, match=r"models 'a_b' and 'a-b' would both deploy as stack 'InferenceRouter-dev-model-a-b'"
    ):
        model_stack_names("dev", ["a_b", "a-b"])


def sizes_of(synth: Synthesized) -> list[StackSize]:
    return [template_size(stack.name, stack.template_path) for stack in synth.all]


def test_the_default_stages_are_far_below_every_limit(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        for size in sizes_of(synth):
            assert size.resources < 150, size
            assert size.outputs < 50, size
            assert size.parameters < 20, size
            assert size.template_bytes < 200_000, size


def test_a_model_stack_over_a_limit_is_named_with_what_to_change(prod: Synthesized) -> None:
    sizes = sizes_of(prod)
    model = next(size for size in sizes if size.stack_name.endswith("-model-iris"))
    with pytest.raises(StackLimitError) as raised:
        check_stack_limits(sizes, platform_stack=prod.platform.name, max_resources=model.resources - 1)
    [message] = [line for line in str(raised.value).splitlines() if "model-iris" in line]
    assert message.startswith(
        f"stack InferenceRouter-prod-model-iris: {model.resources} resources, over CloudFormation's limit of "
        f"{model.resources - 1} (most: "
    )
    assert "split this model into two models in functions/models.json" in message
    assert "A model stack holds one model's endpoints" in message


def test_the_platform_over_a_limit_says_it_must_not_grow_with_models(prod: Synthesized) -> None:
    sizes = sizes_of(prod)
    with pytest.raises(StackLimitError) as raised:
        check_stack_limits(sizes, platform_stack=prod.platform.name, max_outputs=3)
    lines = str(raised.value).splitlines()
    # The capture bucket's output among them: iris captures by default.
    assert lines[0].startswith("stack InferenceRouter-prod: 11 outputs, over CloudFormation's limit of 3")
    assert "must not grow with models" in lines[0]
    assert len(lines) == 1  # the model stack has 2 outputs


def test_synth_stops_when_a_stack_is_over_a_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CDK_OUTDIR", str(tmp_path))
    monkeypatch.setattr(cdk_app, "check_stack_limits", functools.partial(check_stack_limits, max_template_bytes=10_000))
    with pytest.raises(SystemExit) as raised:
        cdk_app.main()
    message = str(raised.value)
    assert message.startswith("stack limits:\nstack InferenceRouter-dev: ")
    assert "template bytes, over CloudFormation's limit of 10000" in message
