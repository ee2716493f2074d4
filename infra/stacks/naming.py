"""The names of a stage's stacks, derived from the stage and model names alone (never written twice).

The platform stack keeps the name the single stack of earlier releases had (``InferenceRouter-<stage>``), so
an existing deploy updates in place: its API, router, tables, buckets, keys and topics keep their logical ids.
Model stacks share that name as a prefix, which lets the alarm topics' policies admit every alarm of the
stage with one ARN pattern (``alarm:InferenceRouter-<stage>-*``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from functions.config.limits import CLOUDFORMATION_MAX_STACK_NAME

STACK_NAME_PREFIX: Final[str] = "InferenceRouter"
_NOT_IN_STACK_NAMES: Final[re.Pattern[str]] = re.compile(r"[^A-Za-z0-9-]")


def platform_stack_name(stage: str) -> str:
    return f"{STACK_NAME_PREFIX}-{stage}"


def model_stack_name(stage: str, model: str) -> str:
    """``InferenceRouter-<stage>-model-<model>``, with the '_' and '.' model names allow turned into '-'."""
    name = f"{platform_stack_name(stage)}-model-{_NOT_IN_STACK_NAMES.sub('-', model)}"
    if len(name) > CLOUDFORMATION_MAX_STACK_NAME:
        raise ValueError(f"stack name {name!r} is over CloudFormation's {CLOUDFORMATION_MAX_STACK_NAME} characters")
    return name


def model_stack_names(stage: str, models: Iterable[str]) -> dict[str, str]:
    """Model name -> its stack name; two models whose names differ only in '_', '.' or '-' cannot share one."""
    names: dict[str, str] = {}
    taken: dict[str, str] = {}
    for model in models:
        name = model_stack_name(stage, model)
        if name in taken:
            raise ValueError(
                f"models {taken[name]!r} and {model!r} would both deploy as stack {name!r}: rename one of them "
                "(stack names cannot tell '_', '.' and '-' apart)"
            )
        taken[name] = model
        names[model] = name
    return names
