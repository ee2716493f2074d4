"""What the sweeper needs to charge async instance time: the region's prices, each async endpoint's instance
type and the interval between sweeps, read from the environment the CDK sets (infra/config/costing.py).

Instance types are keyed like the serverless sizes: ``"*"`` is the stage default and only the endpoints that
differ are named, so a model added with default settings leaves the platform stack unchanged.

Example:
    >>> settings = AsyncCostSettings.from_env({"PRICES": region_prices("us-east-1").to_json(),
    ...     "ASYNC_INSTANCE_TYPES": '{"*": "ml.m5.large"}', "SWEEP_INTERVAL_S": "300"})
    >>> settings.instance_type("dev-iris-async"), settings.interval_s
    ('ml.m5.large', 300)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from functions.config.prices import DEFAULT_SIZE_KEY, PriceTableError, RegionPrices
from functions.config.telemetry import ASYNC_INSTANCE_TYPES_VARIABLE, PRICES_VARIABLE, SWEEP_INTERVAL_VARIABLE


class AsyncCostSettingsError(ValueError):
    """A costing variable of the sweeper holds a value it cannot use; the message names it."""


@dataclass(frozen=True)
class AsyncCostSettings:
    prices: RegionPrices
    instance_types: Mapping[str, str]
    interval_s: int

    def instance_type(self, endpoint: str) -> str | None:
        """The endpoint's instance type: its own entry, else the stage default."""
        return self.instance_types.get(endpoint, self.instance_types.get(DEFAULT_SIZE_KEY))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AsyncCostSettings | None:
        """None when the CDK gave no prices (local mode, tests): no cost is emitted."""
        raw_prices = environ.get(PRICES_VARIABLE)
        if not raw_prices:
            return None
        try:
            prices = RegionPrices.from_json(raw_prices)
        except PriceTableError as error:
            raise AsyncCostSettingsError(f"{PRICES_VARIABLE}: {error}") from None
        return cls(prices, _instance_types(environ.get(ASYNC_INSTANCE_TYPES_VARIABLE)), _interval(environ))


def instance_types_to_json(types: Mapping[str, str]) -> str:
    return json.dumps(dict(sorted(types.items())), separators=(",", ":"))


def _instance_types(raw: str | None) -> dict[str, str]:
    try:
        document = json.loads(raw or "")
    except ValueError:
        raise AsyncCostSettingsError(f"{ASYNC_INSTANCE_TYPES_VARIABLE}: must be JSON, got {raw!r}") from None
    if not isinstance(document, dict) or not all(isinstance(value, str) and value for value in document.values()):
        raise AsyncCostSettingsError(f"{ASYNC_INSTANCE_TYPES_VARIABLE}: must be an object of endpoint -> type")
    return document


def _interval(environ: Mapping[str, str]) -> int:
    raw = environ.get(SWEEP_INTERVAL_VARIABLE, "")
    if not raw.isdigit() or int(raw) <= 0:
        raise AsyncCostSettingsError(f"{SWEEP_INTERVAL_VARIABLE}={raw!r}: must be a positive whole number of seconds")
    return int(raw)
