"""An endpoint's status from SageMaker's control plane (``DescribeEndpoint``), for the ready routes only.

The client comes from the same botocore session as the runtime clients (functions/adapters/sagemaker.py),
made on the first ready request: a sync infer never loads the sagemaker service model. Timeouts are short
and botocore does not retry: a probe waits at most about 1.5 s, and a failure leaves the last known status
standing (functions/domain/readiness.py) rather than holding the caller.
"""

from __future__ import annotations

import re
from typing import Any, Final

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from functions.adapters.sagemaker import runtime_session
from functions.domain.readiness import MISSING, StatusUnavailableError

CONNECT_TIMEOUT_S: Final[float] = 0.5
READ_TIMEOUT_S: Final[float] = 1.0
# SageMaker's ValidationException for an endpoint it does not know: 'Could not find endpoint "<arn>".'
ENDPOINT_NOT_FOUND: Final[re.Pattern[str]] = re.compile(r"^Could not find endpoint")


def create_sagemaker_client() -> Any:
    config = Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return runtime_session().create_client("sagemaker", config=config)


def describe_endpoint(client: Any, endpoint: str, unavailable: type[Exception]) -> dict[str, Any] | None:
    """``DescribeEndpoint``'s answer, None for an endpoint SageMaker does not know; any other failure raises
    ``unavailable`` naming the error code."""
    try:
        response: dict[str, Any] = client.describe_endpoint(EndpointName=endpoint)
    except ClientError as error:
        details = error.response.get("Error", {})
        code = details.get("Code", "Unknown")
        if code in ("ValidationException", "ValidationError") and ENDPOINT_NOT_FOUND.search(
            details.get("Message") or ""
        ):
            return None
        raise unavailable(f"DescribeEndpoint {endpoint!r} failed: {code}") from error
    except BotoCoreError as error:  # timeouts, connection errors, a malformed answer
        raise unavailable(f"DescribeEndpoint {endpoint!r} failed: {type(error).__name__}") from error
    return response


class SageMakerEndpointStatus:
    """Example:
    >>> SageMakerEndpointStatus().status("dev-iris")
    'InService'
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client if client is not None else create_sagemaker_client()

    def status(self, endpoint: str) -> str:
        """The endpoint's EndpointStatus, :data:`MISSING` for an endpoint SageMaker does not know; raises
        StatusUnavailableError naming the error code for anything else."""
        response = describe_endpoint(self._client, endpoint, StatusUnavailableError)
        if response is None:
            return MISSING
        return str(response["EndpointStatus"])
