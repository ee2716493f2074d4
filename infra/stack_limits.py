"""CloudFormation's per-stack limits, checked on the synthesized templates before anything is deployed.

Left to CloudFormation, a stack over a limit fails at deploy (``TooManyResourcesInStack``) after the stacks
before it have changed. Here ``cdk synth`` stops instead, naming the stack, what it holds most of and what to
change.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from aws_cdk import cx_api

from functions.config.limits import (
    CLOUDFORMATION_MAX_OUTPUTS,
    CLOUDFORMATION_MAX_PARAMETERS,
    CLOUDFORMATION_MAX_RESOURCES,
    CLOUDFORMATION_MAX_TEMPLATE_BYTES,
)


class StackLimitError(Exception):
    """A synthesized stack is over one of CloudFormation's per-stack limits."""


@dataclass(frozen=True, slots=True)
class StackSize:
    stack_name: str
    resources: int
    outputs: int
    parameters: int
    template_bytes: int
    resource_types: tuple[tuple[str, int], ...]  # most frequent first


def stack_sizes(assembly: cx_api.CloudAssembly) -> list[StackSize]:
    """The size of every stack in the assembly, read from the template files CDK wrote."""
    return [template_size(stack.stack_name, Path(stack.template_full_path)) for stack in assembly.stacks]


def template_size(stack_name: str, path: Path) -> StackSize:
    text = path.read_bytes()
    template = json.loads(text)
    resources = template.get("Resources", {})
    types = Counter(str(resource.get("Type")) for resource in resources.values())
    return StackSize(
        stack_name=stack_name,
        resources=len(resources),
        outputs=len(template.get("Outputs", {})),
        parameters=len(template.get("Parameters", {})),
        template_bytes=len(text),
        resource_types=tuple(types.most_common()),
    )


def check_stack_limits(
    sizes: Iterable[StackSize],
    *,
    platform_stack: str,
    max_resources: int = CLOUDFORMATION_MAX_RESOURCES,
    max_outputs: int = CLOUDFORMATION_MAX_OUTPUTS,
    max_parameters: int = CLOUDFORMATION_MAX_PARAMETERS,
    max_template_bytes: int = CLOUDFORMATION_MAX_TEMPLATE_BYTES,
) -> None:
    """Raise StackLimitError listing every stack over a limit, each with what to change."""
    problems: list[str] = []
    for size in sizes:
        over = [
            f"{count} {what}, over CloudFormation's limit of {limit}"
            for count, limit, what in (
                (size.resources, max_resources, "resources"),
                (size.outputs, max_outputs, "outputs"),
                (size.parameters, max_parameters, "parameters"),
                (size.template_bytes, max_template_bytes, "template bytes"),
            )
            if count > limit
        ]
        if not over:
            continue
        most = ", ".join(f"{count} {kind}" for kind, count in size.resource_types[:3])
        advice = (
            "The platform stack holds only what every model shares and must not grow with models: what it holds "
            "most of shows what grew; move per-model parts into the model stacks (infra/stacks/model.py)."
            if size.stack_name == platform_stack
            else "A model stack holds one model's endpoints, scaling and alarms: split this model into two "
            "models in functions/models.json, or give it fewer endpoints."
        )
        problems.append(f"stack {size.stack_name}: {'; '.join(over)} (most: {most}). {advice}")
    if problems:
        raise StackLimitError("\n".join(problems))
