"""How many instances an endpoint runs now, from SageMaker's control plane (``DescribeEndpoint``), for the
sweeper's cost of the async endpoints. Same client settings as the ready routes' status reads
(functions/adapters/endpoint_status.py): short timeouts, one attempt, the next sweep reads it again.
"""

from __future__ import annotations

from typing import Any

from functions.adapters.endpoint_status import create_sagemaker_client, describe_endpoint
from functions.domain.async_cost import CapacityUnavailableError


class SageMakerEndpointCapacity:
    """Example:
    >>> SageMakerEndpointCapacity().instances("dev-iris-async")
    1
    """

    def __init__(self, client: Any = None) -> None:
        self._client = client if client is not None else create_sagemaker_client()

    def instances(self, endpoint: str) -> int | None:
        """The instances running now over the endpoint's variants (``CurrentInstanceCount``; a variant being
        created has none yet); None for an endpoint SageMaker does not know. Any other failure raises
        CapacityUnavailableError naming the error code."""
        response = describe_endpoint(self._client, endpoint, CapacityUnavailableError)
        if response is None:
            return None
        return sum(int(variant.get("CurrentInstanceCount", 0)) for variant in response.get("ProductionVariants", []))
