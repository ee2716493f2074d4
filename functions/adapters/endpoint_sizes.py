"""A serverless endpoint's size (what its calls cost) from the SSM parameter its model stack writes.

Each endpoint's size lives in ``<prefix><physical endpoint name>`` (functions/config/prices.py
``serverless_size_parameter_prefix``), not in the router's environment: a model added or resized then changes
its own stack alone. The router asks once per endpoint per :data:`TTL_S` per environment; that one
GetParameter (tens of ms in region, plus creating the SSM client on the first one, bounded by the timeouts
below) falls in the invocation of the first serverless request that needs the size, after its answer is
made. Sizes change only when the model stack deploys, so a size up to 15 minutes stale is costed at most.

Costing is telemetry: no failure here reaches the request. A parameter that is not there, throttling,
AccessDenied, a timeout or a value that does not parse give the stage default and one log line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import ClientError

from functions.adapters.sagemaker import runtime_session
from functions.config.prices import ServerlessSize, serverless_size_from_json

TTL_S: Final[float] = 15 * 60.0
# A failure other than a missing parameter (throttling, a timeout) is retried sooner than a known answer: the
# default it gave may be the wrong size.
ERROR_TTL_S: Final[float] = 60.0
CONNECT_TIMEOUT_S: Final[float] = 0.5
READ_TIMEOUT_S: Final[float] = 1.0
NOT_FOUND: Final[str] = "ParameterNotFound"


def create_ssm_client() -> Any:
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return runtime_session().create_client("ssm", config=config)


class ParameterEndpointSizes:
    """Example:
    >>> sizes = ParameterEndpointSizes("/inference-router/dev/serverless-sizes/", ServerlessSize(2048, 0), print)
    >>> sizes("dev-iris")
    ServerlessSize(memory_mb=2048, provisioned_concurrency=2)
    """

    def __init__(
        self,
        prefix: str,
        default: ServerlessSize | None,
        log: Callable[[str], None],
        *,
        client: Callable[[], Any] = create_ssm_client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._prefix, self._default, self._log = prefix, default, log
        self._make_client: Callable[[], Any] = client
        self._client: Any = None
        self._clock = clock
        self._cache: dict[str, tuple[ServerlessSize | None, float]] = {}

    def __call__(self, endpoint: str) -> ServerlessSize | None:
        now = self._clock()
        cached = self._cache.get(endpoint)
        if cached is not None and now < cached[1]:
            return cached[0]
        size, ttl = self._read(endpoint)
        self._cache[endpoint] = (size, now + ttl)
        return size

    def _read(self, endpoint: str) -> tuple[ServerlessSize | None, float]:
        name = f"{self._prefix}{endpoint}"
        try:
            if self._client is None:
                self._client = self._make_client()
            value = self._client.get_parameter(Name=name)["Parameter"]["Value"]
            return serverless_size_from_json(value, name), TTL_S
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "Unknown"))
            self._log(f"serverless size of {endpoint!r}: GetParameter {name} failed ({code}); costed at the default")
            return self._default, TTL_S if code == NOT_FOUND else ERROR_TTL_S
        except Exception as error:  # timeouts, connection errors, a value that does not parse: the default
            self._log(
                f"serverless size of {endpoint!r}: {name} unreadable ({type(error).__name__}: {error}); "
                "costed at the default"
            )
            return self._default, ERROR_TTL_S
