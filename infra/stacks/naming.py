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


# SageMaker execution roles live under one IAM path per stage and endpoint kind, so the platform's bucket,
# topic and key policies can admit a stage's async endpoints by ARN pattern without listing them (adding a
# model must not change the platform stack). The trailing '/' keeps stage "dev" apart from "dev-eu".
ROLE_PATH_ROOT: Final[str] = "/inference-router/"
SAGEMAKER_ROLE_KINDS: Final[tuple[str, ...]] = ("serverless", "async")


def sagemaker_role_path(stage: str, kind: str) -> str:
    """``/inference-router/<stage>/<kind>/``: the IAM path of a stage's serverless or async execution roles."""
    if kind not in SAGEMAKER_ROLE_KINDS:
        raise ValueError(f"unknown SageMaker role kind {kind!r} (known: {', '.join(SAGEMAKER_ROLE_KINDS)})")
    return f"{ROLE_PATH_ROOT}{stage}/{kind}/"


def role_arn_pattern(*, partition: str, account: str, path: str) -> str:
    """Every role under ``path`` in the account, for an ``aws:PrincipalArn`` ArnLike condition (a role's ARN,
    and its sessions' aws:PrincipalArn, carry the role's path)."""
    return f"arn:{partition}:iam::{account}:role{path}*"
