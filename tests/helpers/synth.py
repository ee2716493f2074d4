"""Synthesized stages for the infra tests: the template, where it was written and the acknowledged cdk-nag
findings, plus a reader for CloudFormation references."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

from infra.app import build_app, new_app
from infra.guardrails import AcknowledgedFinding, acknowledgments
from infra.stacks.inference_router import InferenceRouterStack


@dataclass(frozen=True)
class Synthesized:
    stage: str
    stack: InferenceRouterStack
    template: Template
    template_path: Path
    acknowledgments: list[AcknowledgedFinding]

    @property
    def json(self) -> dict[str, Any]:
        document: dict[str, Any] = self.template.to_json()
        return document

    def resources(self, resource_type: str, props: Any = None) -> dict[str, Any]:
        found: dict[str, Any] = self.template.find_resources(resource_type, {"Properties": props} if props else None)
        return found


def synthesize(stage: str, outdir: Path) -> Synthesized:
    # app.synth() runs the cdk-nag plugin: any unacknowledged finding raises here and fails every test.
    app = new_app(stage=stage, outdir=str(outdir))
    stack = build_app(app)
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    path = outdir / artifact.template_file
    return Synthesized(stage, stack, Template.from_json(json.loads(path.read_text())), path, acknowledgments(stack))


def ref_id(value: Any) -> str:
    """The logical id a {"Ref": ...} or {"Fn::GetAtt": [...]} points at."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return str(value["Fn::GetAtt"][0])
    raise AssertionError(f"not a reference: {value!r}")
