"""What one prediction costs, from a region's public prices: pure arithmetic, USD as float.

Billing rules (the AWS pricing pages named in functions/config/prices.json): Lambda and SageMaker Serverless
Inference bill duration rounded up to the next millisecond, per GB-second of configured memory
(memory_mb / 1024 GB); SageMaker bills data processed in and out per GB (1024**3 bytes); instances bill by the
second at their hourly price.

Example:
    >>> from functions.config.prices import region_prices
    >>> round(api_request_cost(region_prices("us-east-1")) * 1_000_000, 6)
    3.5
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from functions.config.prices import LAMBDA_ARCHITECTURE, RegionPrices, ServerlessSize

MILLION: Final[float] = 1_000_000.0
BYTES_PER_GB: Final[int] = 1024**3
MB_PER_GB: Final[float] = 1024.0
SECONDS_PER_HOUR: Final[float] = 3600.0

# A serverless endpoint's size by its physical name; None: unknown, the call is not costed. In Lambda it reads
# the endpoint's SSM parameter (functions/adapters/endpoint_sizes.py); it never raises.
SizeLookup: TypeAlias = Callable[[str], ServerlessSize | None]


def _billed_seconds(duration_ms: float) -> float:
    # To the microsecond first: a difference of two clock readings carries float noise (100.052 - 100.0 is
    # 52.0000000000067 ms), which must not bill a whole extra millisecond.
    return math.ceil(round(max(duration_ms, 0.0), 3)) / 1000.0


def api_request_cost(p: RegionPrices) -> float:
    """One REST API request."""
    return p.api_gateway_rest_per_million_requests / MILLION


def lambda_cost(
    p: RegionPrices, *, duration_ms: float, memory_mb: int, architecture: str = "arm64", provisioned: bool = False
) -> float:
    """One invocation: its request charge plus its duration, rounded up to 1 ms, at the on-demand rate or, on
    provisioned concurrency, the lower duration rate (the provisioned capacity itself is
    :func:`lambda_provisioned_cost`)."""
    rates = p.lambda_provisioned_duration_gb_second if provisioned else p.lambda_gb_second
    gb_seconds = _billed_seconds(duration_ms) * memory_mb / MB_PER_GB
    return p.lambda_requests_per_million / MILLION + gb_seconds * rates[architecture]


def lambda_provisioned_cost(p: RegionPrices, *, memory_mb: int, seconds: float, architecture: str = "arm64") -> float:
    """One provisioned-concurrency instance held for ``seconds``, busy or idle."""
    return seconds * memory_mb / MB_PER_GB * p.lambda_provisioned_gb_second[architecture]


def serverless_cost(
    p: RegionPrices,
    *,
    duration_ms: float,
    memory_mb: int,
    request_bytes: int,
    response_bytes: int,
    provisioned: bool = False,
) -> float:
    """One serverless-endpoint invocation: duration (rounded up to 1 ms) at the endpoint's configured memory, on
    demand or at the provisioned-concurrency duration rate, plus the data processed in and out."""
    rate = p.sagemaker_serverless_provisioned_duration_gb_second if provisioned else p.sagemaker_serverless_gb_second
    duration = _billed_seconds(duration_ms) * memory_mb / MB_PER_GB * rate
    data = (request_bytes + response_bytes) / BYTES_PER_GB * p.sagemaker_data_processed_per_gb
    return duration + data


def serverless_provisioned_cost(p: RegionPrices, *, memory_mb: int, seconds: float) -> float:
    """One serverless provisioned-concurrency unit held for ``seconds``, busy or idle."""
    return seconds * memory_mb / MB_PER_GB * p.sagemaker_serverless_provisioned_gb_second


def instance_cost(p: RegionPrices, *, instance_type: str, seconds: float) -> float:
    """One SageMaker instance running for ``seconds``."""
    return seconds / SECONDS_PER_HOUR * p.instance_hour(instance_type)


@dataclass(frozen=True)
class RequestCosting:
    """What one infer request through the router used: the API request, the router's own Lambda time (at the
    provisioned-concurrency duration rate when its environment was initialised for it), and the serverless
    endpoint calls it made. The in-Lambda tier costs nothing beyond the router's time (the model runs in it);
    an async job's instance time is the sweeper's to count.

    The serverless duration is the router's EndpointLatency, which includes the network round trip and any
    throttled attempt: an upper bound of what SageMaker bills (its ModelLatency plus overhead).
    """

    prices: RegionPrices
    router_memory_mb: int
    router_provisioned: bool
    serverless_size: SizeLookup
    router_architecture: str = LAMBDA_ARCHITECTURE

    def request_cost(
        self,
        *,
        router_ms: float,
        init_ms: float = 0.0,
        endpoint: str | None = None,
        endpoint_ms: float = 0.0,
        data_bytes: int = 0,
    ) -> float:
        """``init_ms``: the on-demand init this request's environment ran first; Lambda bills it with the
        invocation's duration, at the on-demand rate, rounded up together (the REPORT line's Billed Duration)."""
        total = api_request_cost(self.prices) + lambda_cost(
            self.prices,
            duration_ms=router_ms + init_ms,
            memory_mb=self.router_memory_mb,
            architecture=self.router_architecture,
            provisioned=self.router_provisioned,
        )
        # Only a request that called a serverless endpoint asks for a size.
        size = self.serverless_size(endpoint) if endpoint is not None else None
        if size is not None:
            total += serverless_cost(
                self.prices,
                duration_ms=endpoint_ms,
                memory_mb=size.memory_mb,
                request_bytes=data_bytes,
                response_bytes=0,
                provisioned=size.provisioned_concurrency > 0,
            )
        return total
