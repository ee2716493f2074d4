"""The ``deployment`` block of an endpoint's stage config: how SageMaker shifts traffic when the endpoint updates.

What SageMaker allows (developer guide, "Deployment guardrails" > "Exclusions"; CloudFormation
AWS::SageMaker::Endpoint TrafficRoutingConfig, BlueGreenUpdatePolicy):

- Every endpoint update is blue/green; without a DeploymentConfig it shifts all traffic at once with no baking.
- Instance-based endpoints (our async endpoint) take CANARY (canary <= 50% of the variant's capacity) or
  LINEAR (each step 10-50%) traffic shifting, a baking period per step (WaitIntervalInSeconds, 0-3600 s), a
  final wait before the old fleet is terminated (TerminationWaitInSeconds, 0-3600 s), a deployment timeout
  (MaximumExecutionTimeoutInSeconds, 600-28800 s, larger than the waits) and auto-rollback alarms.
- Serverless endpoints are excluded from rolling deployments only; canary and linear sizes are defined on the
  variant's instance count, which a serverless variant has none of, so a serverless endpoint gets blue/green
  ALL_AT_ONCE with a baking period and the same auto-rollback alarms.
- Marketplace containers and Inf1 instances fall back to all at once with no final baking period; the stage
  config refuses a guarded deployment on an ``ml.inf1.*`` instance rather than let it be silently ignored.
"""

from __future__ import annotations

import math
from typing import Any, Final

from infra.config.reader import StageReader
from infra.config.types import EndpointDeploymentConfig

TRAFFIC_MODES: Final[tuple[str, ...]] = ("all_at_once", "canary", "linear")
SERVERLESS_TRAFFIC_MODES: Final[tuple[str, ...]] = ("all_at_once",)
DEPLOYMENT_KEYS: Final[frozenset[str]] = frozenset(
    {
        "traffic",
        "step_percent",
        "wait_interval_s",
        "termination_wait_s",
        "max_execution_timeout_s",
        "rollback_5xx_per_minute",
        "rollback_p99_latency_ms",
    }
)
# TrafficRoutingConfig: a canary at most 50% of the variant's capacity, a linear step 10-50%.
STEP_PERCENT_BOUNDS: Final[dict[str, tuple[int, int]]] = {"canary": (1, 50), "linear": (10, 50)}
MAX_WAIT_S: Final[int] = 3600
EXECUTION_TIMEOUT_BOUNDS_S: Final[tuple[int, int]] = (600, 28_800)


def shift_steps(traffic: str, step_percent: int) -> int:
    """How many baking periods a deployment waits through: one per traffic step."""
    if traffic == "linear":
        return math.ceil(100 / step_percent)
    return 2 if traffic == "canary" else 1


def read_endpoint_deployment(
    reader: StageReader, raw_value: Any, path: str, *, serverless: bool, instance_type: str | None = None
) -> EndpointDeploymentConfig:
    raw = reader.obj(raw_value, path, DEPLOYMENT_KEYS)
    modes = SERVERLESS_TRAFFIC_MODES if serverless else TRAFFIC_MODES
    traffic_path = f"{path}.traffic"
    traffic = reader.field(raw, "traffic", path)
    if serverless and traffic in TRAFFIC_MODES and traffic not in modes:
        raise reader.fail(
            traffic_path,
            f"{traffic!r} is not available for a serverless endpoint: SageMaker sizes canary and linear steps by "
            "the variant's instance count, which a serverless variant has none of; use 'all_at_once' (blue/green "
            "with a baking period and rollback alarms)",
        )
    reader.choice(traffic, traffic_path, modes)
    if instance_type is not None and instance_type.startswith("ml.inf1."):
        raise reader.fail(
            path,
            f"SageMaker ignores deployment guardrails on Inf1 instances ({instance_type}) and updates all at once "
            "with no baking period; remove the deployment block or choose another instance type",
        )
    step_percent = 0
    if traffic in STEP_PERCENT_BOUNDS:
        low, high = STEP_PERCENT_BOUNDS[traffic]
        step_percent = reader.integer(reader.field(raw, "step_percent", path), f"{path}.step_percent", low, high)
    elif "step_percent" in raw:
        raise reader.fail(f"{path}.step_percent", f"only canary and linear traffic take a step, not {traffic!r}")
    wait = reader.integer(reader.field(raw, "wait_interval_s", path), f"{path}.wait_interval_s", 0, MAX_WAIT_S)
    termination = reader.integer(
        reader.field(raw, "termination_wait_s", path), f"{path}.termination_wait_s", 0, MAX_WAIT_S
    )
    timeout_path = f"{path}.max_execution_timeout_s"
    timeout = reader.integer(
        reader.field(raw, "max_execution_timeout_s", path), timeout_path, *EXECUTION_TIMEOUT_BOUNDS_S
    )
    waiting = wait * shift_steps(traffic, step_percent) + termination
    if timeout <= waiting:
        raise reader.fail(
            timeout_path,
            f"{timeout} s must be larger than the deployment's total waiting time, {waiting} s "
            "(wait_interval_s per traffic step + termination_wait_s), or SageMaker stops it part-way",
        )
    return EndpointDeploymentConfig(
        traffic=traffic,
        step_percent=step_percent,
        wait_interval_s=wait,
        termination_wait_s=termination,
        max_execution_timeout_s=timeout,
        rollback_5xx_per_minute=reader.integer(
            reader.field(raw, "rollback_5xx_per_minute", path), f"{path}.rollback_5xx_per_minute", 0
        ),
        rollback_p99_latency_ms=reader.integer(
            reader.field(raw, "rollback_p99_latency_ms", path), f"{path}.rollback_p99_latency_ms", 1, 3_600_000
        ),
    )
