"""SageMaker's control plane, the one call the router makes of it: ``DescribeEndpoint`` on the JSON 1.1
protocol (``POST /`` with ``X-Amz-Target: SageMaker.DescribeEndpoint``), so an unmodified boto3 ``sagemaker``
client (``AWS_ENDPOINT_URL_SAGEMAKER``) reads the local endpoints' status. Every endpoint the runtime serves is
``InService`` unless its fault spec says otherwise (``endpoint_status``, ``describe_error``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from typing import Final

from local.account import ACCOUNT_ID, REGION
from local.sagemaker_runtime.errors import Reply
from local.sagemaker_runtime.faults import DESCRIBE_ERRORS, FaultInjector
from serving.service import Answer

TARGET_PREFIX: Final[str] = "SageMaker."
JSON_11: Final[str] = "application/x-amz-json-1.1"
STARTED_AT: Final[float] = time.time()


def _error(code: str, status: int, message: str) -> Reply:
    return Answer(status, json.dumps({"__type": code, "message": message}).encode(), JSON_11), {}


def control_plane_call(target: str, body: bytes, endpoints: Collection[str], faults: FaultInjector) -> Reply:
    """The answer to one JSON 1.1 call named by ``target`` (the X-Amz-Target header)."""
    if target != f"{TARGET_PREFIX}DescribeEndpoint":
        return _error("UnknownOperationException", 400, f"the local runtime does not serve {target}")
    try:
        name = json.loads(body or b"{}").get("EndpointName")
    except (ValueError, AttributeError):
        return _error("SerializationException", 400, "the body is not a JSON object")
    arn = f"arn:aws:sagemaker:{REGION}:{ACCOUNT_ID}:endpoint/{str(name).lower()}"
    if not isinstance(name, str) or name not in endpoints:
        return _error("ValidationException", 400, f'Could not find endpoint "{arn}".')
    active = faults.active(name)
    spec = active.spec if active is not None else None
    if spec is not None and spec.describe_error is not None:
        return _error(spec.describe_error, DESCRIBE_ERRORS[spec.describe_error], f"{spec.describe_error} (injected)")
    status = spec.endpoint_status if spec is not None and spec.endpoint_status is not None else "InService"
    document = {
        "EndpointName": name,
        "EndpointArn": arn,
        "EndpointConfigName": name,
        "EndpointStatus": status,
        "CreationTime": STARTED_AT,
        "LastModifiedTime": STARTED_AT,
    }
    return Answer(200, json.dumps(document).encode(), JSON_11), {}
