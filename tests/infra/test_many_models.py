"""Hundreds of models per stage: a generated fleet synthesizes in both stages with every stack far below
CloudFormation's limits, and adding or changing one model leaves every other model's stack untouched."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench.model_fleet import ModelFleet, fleet_model_name, write_model_fleet
from bench.synth_scale import measure
from functions.config.limits import CLOUDFORMATION_MAX_RESOURCES
from functions.config.models import load_models_config
from infra.stack_limits import template_size
from tests.helpers.synth import Synthesized, synthesize

FLEET_SIZE = 200


ROUTER_VERSION_ID = re.compile(r"(RouterFunctionCurrentVersion[0-9A-F]{8})[0-9a-f]{32}")


def synthesize_fleet(fleet: ModelFleet, stage: str, outdir: Path) -> Synthesized:
    return synthesize(stage, outdir, models=load_models_config(fleet.models_path), stages_path=fleet.stages_path)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_two_hundred_models_synthesize_with_every_stack_far_below_the_limit(
    stage: str, tmp_path: Path, dev: Synthesized, prod: Synthesized
) -> None:
    fleet = write_model_fleet(tmp_path / "fleet", FLEET_SIZE)
    # synthesize() runs cdk-nag over every stack and the limit check; either would raise here.
    synth = synthesize_fleet(fleet, stage, tmp_path / "out")
    assert sorted(synth.models) == sorted(fleet.model_names)
    sizes = [template_size(stack.name, stack.template_path) for stack in synth.all]
    assert max(size.resources for size in sizes[1:]) < CLOUDFORMATION_MAX_RESOURCES // 4
    # The platform does not grow with models: it is the same size as with one model of the fleet (the default
    # config's platform also serves digits in-Lambda). Capture delivery (11) and the drift job (10) take it to
    # 129 resources in dev and 132 in prod, whatever the model count.
    one = synthesize_fleet(write_model_fleet(tmp_path / "one", 1), stage, tmp_path / "out-one")
    assert sizes[0].resources == len(one.platform.json["Resources"])
    assert sizes[0].resources < CLOUDFORMATION_MAX_RESOURCES // 3
    default = prod if stage == "prod" else dev
    model_sizes = {size.resources for size in sizes[1:]}
    assert model_sizes == {len(default.models["iris"].json["Resources"])}
    print(
        f"{stage}: {len(sizes)} stacks; platform {sizes[0].resources} resources, "
        f"each model stack {model_sizes.pop()} resources"
    )


def stack_templates(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Each stack's template, with two values set aside in the platform's:

    - the drift job's baselines layer's asset key: like the router's code, it holds every capturing model's
      baseline, so a new capturing model changes its content, not its resources;
    - the hash in the router version's logical id: CDK's function hash differs between two apps synthesized in
      one process (a fresh process repeats the same sequence; one ``cdk synth`` is stable), and the router
      function it hashes is compared here property by property anyway.
    """
    templates = {stack.name: stack.json for stack in synth.all}
    platform = copy.deepcopy(synth.platform.json)
    for logical_id, resource in platform["Resources"].items():
        if resource["Type"] == "AWS::Lambda::LayerVersion" and logical_id.startswith("DriftBaselines"):
            resource["Properties"]["Content"]["S3Key"] = "<each capturing model's baseline>"
    templates[synth.platform.name] = json.loads(ROUTER_VERSION_ID.sub(r"\1<hash>", json.dumps(platform)))
    return templates


def test_adding_or_resizing_a_model_changes_only_that_models_stack(tmp_path: Path) -> None:
    three = synthesize_fleet(write_model_fleet(tmp_path / "three", 3), "prod", tmp_path / "out-three")
    four_fleet = write_model_fleet(tmp_path / "four", 4)
    four = synthesize_fleet(four_fleet, "prod", tmp_path / "out-four")
    before, after = stack_templates(three), stack_templates(four)
    added = f"InferenceRouter-prod-model-{fleet_model_name(3)}"
    assert set(after) - set(before) == {added}
    # Every other stack, the platform included, is unchanged: the router's invoke permission is by prefix.
    # (On a real change to functions/models.json the router's code asset changes too: it must learn the model.)
    assert {name: after[name] for name in before} == before

    stages = json.loads(four_fleet.stages_path.read_text())
    stages["stages"]["prod"]["serverless_endpoints"][fleet_model_name(1)]["memory_mb"] = 4096
    four_fleet.stages_path.write_text(json.dumps(stages))
    resized = stack_templates(synthesize_fleet(four_fleet, "prod", tmp_path / "out-resized"))
    changed = {name for name in after if resized[name] != after[name]}
    assert changed == {f"InferenceRouter-prod-model-{fleet_model_name(1)}"}


def test_the_synth_bench_reports_a_stage_of_generated_models() -> None:
    figures = measure(2, "dev")
    assert (figures["models"], figures["stacks"]) == (2, 3)
    assert figures["largest_model_stack_resources"] < figures["platform_resources"]
    assert figures["build_s"] > 0
    assert figures["synth_s"] > 0
