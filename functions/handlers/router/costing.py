"""How the router costs a request (functions/domain/cost.py): its region's prices, its own memory and init, and
each serverless endpoint's size, read from the endpoint's SSM parameter in Lambda and the stage default in
local mode (no parameter path: SSM is never called)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from functions.domain.cost import RequestCosting, SizeLookup

if TYPE_CHECKING:
    from functions.config.prices import ServerlessSize
    from functions.config.router_settings import RouterSettings

# (parameter path prefix, the stage default, the log line's sink) -> the size lookup
SizesFactory = Callable[[str, "ServerlessSize | None", Callable[[str], None]], SizeLookup]


def parameter_sizes(prefix: str, default: ServerlessSize | None, log: Callable[[str], None]) -> SizeLookup:
    """The SSM-backed lookup, imported on first use: a router without prices never loads it."""
    from functions.adapters.endpoint_sizes import ParameterEndpointSizes

    return ParameterEndpointSizes(prefix, default, log)


def request_costing(settings: RouterSettings, sizes: SizesFactory, log: Callable[[str], None]) -> RequestCosting | None:
    """None without prices: no CostUsd is emitted."""
    if settings.prices is None:
        return None
    default = settings.serverless_default_size
    lookup: SizeLookup = (
        sizes(settings.serverless_size_prefix, default, log)
        if settings.serverless_size_prefix is not None
        else lambda _endpoint: default
    )
    return RequestCosting(settings.prices, settings.memory_mb, settings.provisioned_init, lookup)
