"""The public AWS prices cost per prediction is computed from: a dated, per-region table (prices.json) that
the stage config may override key by key.

The CDK reads the table at synth and hands the router its region's row as one environment variable
(:meth:`RegionPrices.to_json`); the planner reads the same table, so the live figure and the plan agree.

Example:
    >>> region_prices("us-east-1").sagemaker_instance_hour["ml.m5.large"]
    0.115
    >>> region_prices("us-east-1", {"lambda_gb_second": {"arm64": 0.00002}}).lambda_gb_second["arm64"]
    2e-05
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from functions.config.config_reader import ConfigError, read_json_file

PRICE_TABLE_PATH: Final[Path] = Path(__file__).resolve().parent / "prices.json"
ARCHITECTURES: Final[frozenset[str]] = frozenset({"arm64", "x86_64"})
# The app's functions run on Graviton (infra/constructs/python_function.py ARCHITECTURE).
LAMBDA_ARCHITECTURE: Final[str] = "arm64"
# The stage-config field that overrides the table (infra/stages.json defaults.prices or stages.<s>.prices).
OVERRIDE_FIELD: Final[str] = "prices"
SCALAR_KEYS: Final[tuple[str, ...]] = (
    "api_gateway_rest_per_million_requests",
    "lambda_requests_per_million",
    "sagemaker_serverless_gb_second",
    "sagemaker_serverless_provisioned_gb_second",
    "sagemaker_serverless_provisioned_duration_gb_second",
    "sagemaker_data_processed_per_gb",
)
ARCHITECTURE_KEYS: Final[tuple[str, ...]] = (
    "lambda_gb_second",
    "lambda_provisioned_gb_second",
    "lambda_provisioned_duration_gb_second",
)
INSTANCE_KEY: Final[str] = "sagemaker_instance_hour"
PRICE_KEYS: Final[frozenset[str]] = frozenset({*SCALAR_KEYS, *ARCHITECTURE_KEYS, INSTANCE_KEY})
# The one entry of SERVERLESS_ENDPOINT_SIZES: the stage's default size, for an endpoint whose own size the
# router cannot read. Each endpoint's own size is an SSM parameter its model stack writes, so adding or resizing
# a model leaves the router's environment, and so the platform stack, unchanged. No endpoint name can be "*".
DEFAULT_SIZE_KEY: Final[str] = "*"
# The router's variable naming the SSM path its endpoint sizes are under (serverless_size_parameter_prefix).
SIZES_PREFIX_VARIABLE: Final[str] = "SERVERLESS_SIZE_PARAMETER_PREFIX"
SIZE_PARAMETER_ROOT: Final[str] = "/inference-router"
SIZE_PARAMETER_FOLDER: Final[str] = "serverless-sizes"


class PriceTableError(ConfigError):
    """The price table, an override of it, or a price asked of it is invalid; the message names the field."""


@dataclass(frozen=True)
class RegionPrices:
    """One region's prices, all USD. Per-GB-second rates are per GB of configured memory (memory_mb / 1024)."""

    api_gateway_rest_per_million_requests: float
    lambda_requests_per_million: float
    lambda_gb_second: Mapping[str, float]
    lambda_provisioned_gb_second: Mapping[str, float]
    lambda_provisioned_duration_gb_second: Mapping[str, float]
    sagemaker_serverless_gb_second: float
    sagemaker_serverless_provisioned_gb_second: float
    sagemaker_serverless_provisioned_duration_gb_second: float
    sagemaker_data_processed_per_gb: float
    sagemaker_instance_hour: Mapping[str, float]

    def instance_hour(self, instance_type: str) -> float:
        """The hourly price of a SageMaker instance type; one the table lacks names the field to set."""
        try:
            return self.sagemaker_instance_hour[instance_type]
        except KeyError:
            raise PriceTableError(
                f"{OVERRIDE_FIELD}.{INSTANCE_KEY}.{instance_type}: no price for this instance type "
                f"(the table has {', '.join(sorted(self.sagemaker_instance_hour))}); set it in the stage config"
            ) from None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> RegionPrices:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as failure:
            raise PriceTableError(f"{OVERRIDE_FIELD}: invalid JSON: {failure.msg}") from failure
        return _parse_row(raw, OVERRIDE_FIELD)


def load_price_table(path: Path | None = None) -> dict[str, Any]:
    """The raw table (``as_of``, ``currency``, ``sources``, ``regions``), each region's row checked."""
    source = path or PRICE_TABLE_PATH
    raw = read_json_file(source, PriceTableError)
    if not isinstance(raw, dict) or not isinstance(raw.get("regions"), dict):
        raise PriceTableError(f"{source}: regions: must be an object of region -> prices")
    for key in ("as_of", "currency"):
        if not isinstance(raw.get(key), str):
            raise PriceTableError(f"{source}: {key}: is required (a string)")
    try:
        date.fromisoformat(raw["as_of"])
    except ValueError:
        raise PriceTableError(f"{source}: as_of: {raw['as_of']!r} is not an ISO date (YYYY-MM-DD)") from None
    for region, row in raw["regions"].items():
        _parse_row(row, f"{source}: regions.{region}")
    return raw


def region_prices(
    region: str,
    overrides: Mapping[str, Any] | None = None,
    *,
    field: str = OVERRIDE_FIELD,
    path: Path | None = None,
) -> RegionPrices:
    """The region's row with ``overrides`` (a partial row, ``field`` in the stage config) deep-merged over it.

    A region the table lacks needs every key in ``overrides``; otherwise the error names the region and field.
    """
    regions: dict[str, Any] = load_price_table(path)["regions"]
    overrides = overrides or {}
    if not isinstance(overrides, Mapping):
        raise PriceTableError(f"{field}: must be an object of price -> value, got {type(overrides).__name__}")
    _check_keys(overrides, field)
    if region not in regions:
        missing = sorted(PRICE_KEYS - set(overrides))
        if missing:
            raise PriceTableError(
                f"{field}: the price table has no region {region!r} (it has {', '.join(sorted(regions))}); "
                f"set every price for it in {field} (missing: {', '.join(missing)})"
            )
    merged: dict[str, Any] = dict(regions.get(region, {}))
    for key, value in overrides.items():
        base = merged.get(key)
        merged[key] = {**base, **value} if isinstance(base, dict) and isinstance(value, Mapping) else value
    return _parse_row(merged, field)


def _check_keys(raw: Mapping[str, Any], field: str) -> None:
    unknown = sorted(set(raw) - PRICE_KEYS)
    if unknown:
        raise PriceTableError(f"{field}.{unknown[0]}: unknown price (allowed: {', '.join(sorted(PRICE_KEYS))})")


def _price(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise PriceTableError(f"{path}: must be a non-negative number of USD, got {value!r}")
    return float(value)


def _rates(value: Any, path: str, allowed: frozenset[str] | None) -> dict[str, float]:
    if not isinstance(value, Mapping) or not value:
        raise PriceTableError(f"{path}: must be a non-empty object of name -> USD, got {value!r}")
    if allowed is not None and set(value) != allowed:
        raise PriceTableError(f"{path}: must name exactly {', '.join(sorted(allowed))}, got {', '.join(sorted(value))}")
    return {name: _price(rate, f"{path}.{name}") for name, rate in value.items()}


def _parse_row(raw: Any, field: str) -> RegionPrices:
    if not isinstance(raw, Mapping):
        raise PriceTableError(f"{field}: must be an object of price -> value, got {type(raw).__name__}")
    _check_keys(raw, field)
    missing = sorted(PRICE_KEYS - set(raw))
    if missing:
        raise PriceTableError(f"{field}.{missing[0]}: is required")
    values: dict[str, Any] = {key: _price(raw[key], f"{field}.{key}") for key in SCALAR_KEYS}
    values |= {key: _rates(raw[key], f"{field}.{key}", ARCHITECTURES) for key in ARCHITECTURE_KEYS}
    values[INSTANCE_KEY] = _rates(raw[INSTANCE_KEY], f"{field}.{INSTANCE_KEY}", None)
    return RegionPrices(**values)


@dataclass(frozen=True)
class ServerlessSize:
    """What a serverless endpoint is billed by besides its duration: its memory and provisioned concurrency."""

    memory_mb: int
    provisioned_concurrency: int


def serverless_size_to_json(size: ServerlessSize) -> str:
    return json.dumps(asdict(size), separators=(",", ":"))


def serverless_size_from_json(text: str, name: str) -> ServerlessSize:
    """``{"memory_mb": int, "provisioned_concurrency": int}``; anything else names ``name``."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as failure:
        raise PriceTableError(f"serverless sizes: {name}: invalid JSON: {failure.msg}") from failure
    return _serverless_size(raw, name)


def _serverless_size(raw: Any, name: str) -> ServerlessSize:
    if not isinstance(raw, dict) or set(raw) != {"memory_mb", "provisioned_concurrency"}:
        raise PriceTableError(f"serverless sizes: {name}: must name memory_mb and provisioned_concurrency")
    memory, provisioned = raw["memory_mb"], raw["provisioned_concurrency"]
    if type(memory) is not int or type(provisioned) is not int or memory < 1 or provisioned < 0:
        raise PriceTableError(f"serverless sizes: {name}: memory_mb > 0 and provisioned_concurrency >= 0 (integers)")
    return ServerlessSize(memory_mb=memory, provisioned_concurrency=provisioned)


def default_size_to_json(size: ServerlessSize) -> str:
    """SERVERLESS_ENDPOINT_SIZES: the stage default under ``"*"``, the one size the router's environment holds."""
    return json.dumps({DEFAULT_SIZE_KEY: asdict(size)}, separators=(",", ":"))


def default_size_from_json(text: str) -> ServerlessSize:
    """``{"*": {"memory_mb": int, "provisioned_concurrency": int}}``; anything else names the entry."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as failure:
        raise PriceTableError(f"serverless sizes: invalid JSON: {failure.msg}") from failure
    if not isinstance(raw, dict) or set(raw) != {DEFAULT_SIZE_KEY}:
        raise PriceTableError(
            f'serverless sizes: must be {{"{DEFAULT_SIZE_KEY}": the stage default}} alone (each endpoint\'s own '
            f"size is its SSM parameter under {SIZES_PREFIX_VARIABLE})"
        )
    return _serverless_size(raw[DEFAULT_SIZE_KEY], DEFAULT_SIZE_KEY)


def serverless_size_parameter_prefix(stage: str) -> str:
    """Where a stage's serverless endpoint sizes are: the SSM String parameter ``prefix + physical endpoint
    name`` holds :func:`serverless_size_to_json` of the endpoint's size. The model stack deploying the endpoint
    writes it; the router reads it. Under the platform's parameter root (infra/constructs/platform_parameters.py)."""
    return f"{SIZE_PARAMETER_ROOT}/{stage}/{SIZE_PARAMETER_FOLDER}/"


def serverless_size(sizes: Mapping[str, ServerlessSize], endpoint: str) -> ServerlessSize | None:
    """The endpoint's size: its own entry, else the stage default; None when neither is there."""
    return sizes.get(endpoint, sizes.get(DEFAULT_SIZE_KEY))
