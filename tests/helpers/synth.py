"""Synthesized stages for the infra tests: each stack's template, where it was written and its acknowledged
cdk-nag findings, a merged view over all of a stage's stacks, plus a reader for CloudFormation references."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from aws_cdk import Stack
from aws_cdk.assertions import Template

from infra.app import StageStacks, build_app, new_app
from infra.guardrails import AcknowledgedFinding, acknowledgments
from infra.stack_limits import check_stack_limits, stack_sizes
from infra.stacks.platform import PlatformStack


@dataclass(frozen=True)
class SynthesizedStack:
    """One stack's template as written; the assertions view and the acknowledgments are built on first use
    (each crosses into the CDK's Node process, which a stage of hundreds of stacks would pay for every stack)."""

    name: str
    stack: Stack
    template_path: Path

    @cached_property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.template_path.read_text())
        return document

    @cached_property
    def template(self) -> Template:
        return Template.from_json(self.json)

    @cached_property
    def acknowledgments(self) -> list[AcknowledgedFinding]:
        return acknowledgments(self.stack)

    def resources(self, resource_type: str, props: Any = None) -> dict[str, Any]:
        found: dict[str, Any] = self.template.find_resources(resource_type, {"Properties": props} if props else None)
        return found


@dataclass(frozen=True)
class Synthesized:
    """A stage: its platform stack and its model stacks (by model name)."""

    stage: str
    stacks: StageStacks
    platform: SynthesizedStack
    models: dict[str, SynthesizedStack]

    @property
    def all(self) -> list[SynthesizedStack]:
        return [self.platform, *self.models.values()]

    @property
    def stack(self) -> PlatformStack:
        return self.stacks.platform

    @property
    def outdir(self) -> Path:
        return self.platform.template_path.parent

    @property
    def acknowledgments(self) -> list[AcknowledgedFinding]:
        return [finding for stack in self.all for finding in stack.acknowledgments]

    @property
    def json(self) -> dict[str, Any]:
        """All stacks' resources in one document (each logical id is unique across the stage's stacks)."""
        merged: dict[str, Any] = {}
        for stack in self.all:
            for logical_id, resource in stack.json.get("Resources", {}).items():
                assert logical_id not in merged, f"logical id {logical_id} is in two stacks: use one stack's view"
                merged[logical_id] = resource
        return {"Resources": merged}

    def resources(self, resource_type: str, props: Any = None) -> dict[str, Any]:
        """Every resource of the type (and properties) in any of the stage's stacks."""
        found: dict[str, Any] = {}
        for stack in self.all:
            for logical_id, resource in stack.resources(resource_type, props).items():
                assert logical_id not in found, f"logical id {logical_id} is in two stacks: use one stack's view"
                found[logical_id] = resource
        return found


def _synthesized_stack(outdir: Path, stack: Stack, assembly: Any) -> SynthesizedStack:
    return SynthesizedStack(
        stack.stack_name, stack, outdir / assembly.get_stack_artifact(stack.artifact_id).template_file
    )


def synthesize(stage: str, outdir: Path, **build: Any) -> Synthesized:
    """Build and synthesize a stage as the CLI would (``build`` goes to :func:`infra.app.build_app`).

    app.synth() runs the cdk-nag plugin: any unacknowledged finding raises here; so does a stack over a limit.
    """
    app = new_app(stage=stage, outdir=str(outdir))
    stacks = build_app(app, **build)
    assembly = app.synth()
    check_stack_limits(stack_sizes(assembly), platform_stack=stacks.platform.stack_name)
    return Synthesized(
        stage,
        stacks,
        _synthesized_stack(outdir, stacks.platform, assembly),
        {name: _synthesized_stack(outdir, stack, assembly) for name, stack in stacks.models.items()},
    )


def platform_ref_id(synth: Synthesized, stack: SynthesizedStack, value: Any) -> str:
    """The platform resource a model stack's value names through an SSM parameter, as its logical id.

    The model stack holds ``{"Ref": "Platform..."}``, an SSM-typed parameter whose default is a parameter name;
    the platform stack writes that SSM parameter with a reference to its own resource.
    """
    parameter = stack.json["Parameters"][ref_id(value)]
    assert parameter["Type"] == "AWS::SSM::Parameter::Value<String>", parameter
    [published] = [
        resource["Properties"]
        for resource in synth.platform.resources("AWS::SSM::Parameter").values()
        if resource["Properties"]["Name"] == parameter["Default"]
    ]
    return ref_id(published["Value"])


def ref_id(value: Any) -> str:
    """The logical id a {"Ref": ...} or {"Fn::GetAtt": [...]} points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")
