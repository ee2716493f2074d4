"""Where an operator command acts: a running ``make local`` (its state file) or a deployed stack (its outputs)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import boto3

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
# Written by ``python -m local`` while it runs; removed when it stops.
LOCAL_STATE_FILE: Final[Path] = REPO_ROOT / ".local" / "state.json"


class TargetError(RuntimeError):
    """The command cannot find what to act on; the message says what to start or pass."""


@dataclass(frozen=True)
class Target:
    """The async path's resources and the clients to reach them."""

    description: str
    result_queue_url: str
    dead_letter_queue_url: str
    bucket: str
    job_table: str
    endpoint_name_prefix: str
    environment: dict[str, str]  # what the functions would read; applied before building their services

    def client(self, service: str) -> Any:
        return boto3.client(service)


def local_target(state_file: Path = LOCAL_STATE_FILE) -> Target:
    try:
        state: dict[str, Any] = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TargetError(f"no local stack is running ({state_file} is absent): start one with `make local`") from None
    environment: dict[str, str] = state["environment"]
    return Target(
        description=f"local stack (pid {state['pid']})",
        result_queue_url=environment["RESULT_QUEUE_URL"],
        dead_letter_queue_url=environment["DEAD_LETTER_QUEUE_URL"],
        bucket=environment["ASYNC_BUCKET"],
        job_table=environment["JOB_TABLE"],
        endpoint_name_prefix=environment.get("ENDPOINT_NAME_PREFIX", ""),
        environment=environment,
    )


def stack_target(stack_name: str) -> Target:
    """Read the queue, bucket and table names from a deployed stack's outputs (credentials from the shell)."""
    cloudformation = boto3.client("cloudformation")
    try:
        stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    except Exception as error:
        raise TargetError(f"cannot read stack {stack_name!r}: {error}") from error
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}
    missing = [key for key in ("ResultQueueUrl", "DeadLetterQueueUrl", "AsyncBucket", "JobTable") if key not in outputs]
    if missing:
        raise TargetError(
            f"stack {stack_name!r} lacks outputs {', '.join(missing)}: "
            "name the stage's platform stack (InferenceRouter-<stage>), not a model stack"
        )
    environment = {
        "ASYNC_BUCKET": outputs["AsyncBucket"],
        "JOB_TABLE": outputs["JobTable"],
        "ENDPOINT_NAME_PREFIX": outputs.get("EndpointNamePrefix", ""),
    }
    return Target(
        description=f"stack {stack_name}",
        result_queue_url=outputs["ResultQueueUrl"],
        dead_letter_queue_url=outputs["DeadLetterQueueUrl"],
        bucket=outputs["AsyncBucket"],
        job_table=outputs["JobTable"],
        endpoint_name_prefix=environment["ENDPOINT_NAME_PREFIX"],
        environment=environment,
    )


def apply_environment(target: Target) -> None:
    """Point the functions' own adapters (and boto3) at the target, as their Lambda environment would."""
    os.environ.update(target.environment)
