"""The router's settings: read from the environment once at cold start, checked, passed down as values.

The CDK router construct sets exactly these variables (tested in tests/infra).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, TypeVar

from functions.config.caller_policy import CallerPolicy, caller_policy_from_env
from functions.config.models import ENDPOINT_NAME_PATTERN
from functions.config.prices import (
    SIZES_PREFIX_VARIABLE,
    PriceTableError,
    RegionPrices,
    ServerlessSize,
    default_size_from_json,
)
from functions.config.telemetry import LATENCY_TARGETS_VARIABLE, PRICES_VARIABLE, SERVERLESS_SIZES_VARIABLE

ENVIRONMENT_VARIABLES: Final[tuple[str, ...]] = (
    "MODELS_CONFIG_PATH",
    "ENDPOINT_NAME_PREFIX",
    "INVOKE_BUDGET_MS",
    "RESPONSE_RESERVE_MS",
    "MODEL_ROOT",
    "CALLER_POLICY",
    LATENCY_TARGETS_VARIABLE,
    PRICES_VARIABLE,
    SERVERLESS_SIZES_VARIABLE,
    SIZES_PREFIX_VARIABLE,
    "CAPTURE_SAMPLE_RATE",
)
# An SSM parameter path: "/"-separated names of letters, digits, "_", "." and "-", ending in "/" (the endpoint
# name follows it).
PARAMETER_PREFIX_PATTERN: Final[re.Pattern[str]] = re.compile(r"^(/[A-Za-z0-9_.-]+)+/$")


# Set by the Lambda runtime itself (not the templates): "on-demand", "provisioned-concurrency" or "snap-start".
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime
INITIALIZATION_TYPE_VARIABLE: Final[str] = "AWS_LAMBDA_INITIALIZATION_TYPE"
PROVISIONED_CONCURRENCY_INIT: Final[str] = "provisioned-concurrency"
ON_DEMAND_INIT: Final[str] = "on-demand"
# Also set by the runtime: the function's memory in MB. The last-good cache may take 1/16 of it (64 MiB of the
# default 1,024 MB), leaving the rest to the request in flight (a parsed body takes several times its size).
MEMORY_SIZE_VARIABLE: Final[str] = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
LAST_GOOD_MEMORY_DIVISOR: Final[int] = 16

T = TypeVar("T")

DEFAULT_INVOKE_BUDGET_MS: Final[int] = 20_000
DEFAULT_RESPONSE_RESERVE_MS: Final[int] = 300
DEFAULT_MEMORY_MB: Final[int] = 1024  # outside Lambda (local mode, tests): the stage default's size


class SettingsError(ValueError):
    """An environment variable holds a value the router cannot use."""


@dataclass(frozen=True)
class RouterSettings:
    models_config_path: str | None = None
    endpoint_name_prefix: str = ""
    invoke_budget_ms: int = DEFAULT_INVOKE_BUDGET_MS
    response_reserve_ms: int = DEFAULT_RESPONSE_RESERVE_MS
    # Where ``lambda``-routed models' artifacts are found (their config path below it): /opt in Lambda, where
    # the model layer mounts; the repo root when unset (local mode, tests).
    model_root: str | None = None
    # This environment is initialised for provisioned concurrency: init runs before any request is routed to
    # it, so work done then (warming the in-Lambda sessions) is paid by no caller.
    provisioned_init: bool = False
    # This environment's init was on demand: Lambda bills it (since 1 August 2025) with the first request. A
    # provisioned-concurrency init is in the PC rate; a SnapStart restore is billed apart from the request.
    on_demand_init: bool = False
    # Who may call which model (CALLER_POLICY); None: every authenticated caller, every model.
    caller_policy: CallerPolicy | None = None
    last_good_max_bytes: int = DEFAULT_MEMORY_MB * 1024 * 1024 // LAST_GOOD_MEMORY_DIVISOR
    # Each model's latency target in ms (the stage's SLO): a request slower than its model's counts in
    # SlowRequests. A model without one counts none.
    latency_targets_ms: Mapping[str, float] = field(default_factory=dict)
    memory_mb: int = DEFAULT_MEMORY_MB
    # The region's prices: each request's CostUsd. None (local mode, tests): no cost is emitted.
    prices: RegionPrices | None = None
    # The stage's default serverless size, and the SSM path each endpoint's own size is read from (adapters/
    # endpoint_sizes.py). No path (local mode): every endpoint is costed at the default, and SSM is never called.
    serverless_default_size: ServerlessSize | None = None
    serverless_size_prefix: str | None = None
    # Overrides the sample rate of every model that captures (CAPTURE_SAMPLE_RATE: the local stack sets 1);
    # None: each model's own. Never turns capture on for a model without a capture block.
    capture_sample_rate: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> RouterSettings:
        prefix = environ.get("ENDPOINT_NAME_PREFIX", "")
        if prefix and not ENDPOINT_NAME_PATTERN.match(prefix.rstrip("-") or "x"):
            raise SettingsError(f"ENDPOINT_NAME_PREFIX={prefix!r}: endpoint names take only letters, digits and '-'")
        memory_mb = _positive_int(environ, MEMORY_SIZE_VARIABLE, DEFAULT_MEMORY_MB, "megabytes")
        return cls(
            models_config_path=environ.get("MODELS_CONFIG_PATH") or None,
            endpoint_name_prefix=prefix,
            invoke_budget_ms=_positive_int(environ, "INVOKE_BUDGET_MS", DEFAULT_INVOKE_BUDGET_MS),
            response_reserve_ms=_positive_int(environ, "RESPONSE_RESERVE_MS", DEFAULT_RESPONSE_RESERVE_MS),
            model_root=environ.get("MODEL_ROOT") or None,
            provisioned_init=environ.get(INITIALIZATION_TYPE_VARIABLE) == PROVISIONED_CONCURRENCY_INIT,
            on_demand_init=environ.get(INITIALIZATION_TYPE_VARIABLE) == ON_DEMAND_INIT,
            caller_policy=caller_policy_from_env(environ.get("CALLER_POLICY"), _policy_error),
            last_good_max_bytes=memory_mb * 1024 * 1024 // LAST_GOOD_MEMORY_DIVISOR,
            latency_targets_ms=_latency_targets(environ.get(LATENCY_TARGETS_VARIABLE)),
            memory_mb=memory_mb,
            prices=_priced(environ.get(PRICES_VARIABLE), PRICES_VARIABLE, RegionPrices.from_json),
            serverless_default_size=_priced(environ.get(SERVERLESS_SIZES_VARIABLE), SERVERLESS_SIZES_VARIABLE,
                                            default_size_from_json),
            serverless_size_prefix=_parameter_prefix(environ.get(SIZES_PREFIX_VARIABLE)),
            capture_sample_rate=_fraction(environ, "CAPTURE_SAMPLE_RATE"),
        )  # fmt: skip


def _priced(raw: str | None, name: str, parse: Callable[[str], T]) -> T | None:
    """A costing variable, parsed; unset or empty: None."""
    if not raw:
        return None
    try:
        return parse(raw)
    except PriceTableError as error:
        raise SettingsError(f"{name}: {error}") from None


def _parameter_prefix(raw: str | None) -> str | None:
    if not raw:
        return None
    if not PARAMETER_PREFIX_PATTERN.match(raw):
        raise SettingsError(
            f"{SIZES_PREFIX_VARIABLE}={raw!r}: must be an SSM parameter path ending in '/' (/inference-router/dev/"
            "serverless-sizes/)"
        )
    return raw


def _policy_error(path: str, message: str) -> SettingsError:
    return SettingsError(f"{path}: {message}")


def _latency_targets(raw: str | None) -> dict[str, float]:
    """``{"model": milliseconds}``; unset or empty: no targets."""
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise SettingsError(f"{LATENCY_TARGETS_VARIABLE} is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise SettingsError(f"{LATENCY_TARGETS_VARIABLE} must be a JSON object of model name to milliseconds")
    targets: dict[str, float] = {}
    for model, target in document.items():
        if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < float("inf"):
            raise SettingsError(f"{LATENCY_TARGETS_VARIABLE}: the target of {model!r} must be a positive number of ms")
        targets[model] = float(target)
    return targets


def _fraction(environ: Mapping[str, str], name: str) -> float | None:
    """A fraction in (0, 1]; unset or empty: None."""
    raw = environ.get(name)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: must be a fraction in (0, 1]") from None
    if not 0 < value <= 1:
        raise SettingsError(f"{name}={raw!r}: must be a fraction in (0, 1]")
    return value


def _positive_int(environ: Mapping[str, str], name: str, default: int, unit: str = "milliseconds") -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r}: must be a whole number of {unit}") from None
    if value <= 0:
        raise SettingsError(f"{name}={raw!r}: must be positive")
    return value
