"""Readiness over HTTP on the local stack: the endpoint's status set through the runtime's fault route, read by
the router with an unmodified boto3 ``sagemaker`` client (DescribeEndpoint on the local control plane)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import LocalStack, start_local_stack


@pytest.fixture(scope="module")
def stack(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalStack]:
    started = start_local_stack(api_port=0, runtime=local_runtime, async_options=None)
    try:
        yield started
    finally:
        local_runtime.clear_faults()
        started.stop()


def http(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_model_and_server_readiness_follow_the_endpoint_status(stack: LocalStack) -> None:
    api, runtime = stack.api.url, stack.runtime.url
    assert http(f"{api}/v2/models/iris/ready") == (200, {"name": "iris", "ready": True})
    assert http(f"{runtime}/_local/faults/iris", "PUT", {"endpoint_status": "Creating"})[0] == 200
    stack.fresh_router()  # a new environment: nothing cached
    assert http(f"{api}/v2/models/iris/ready") == (400, {"name": "iris", "ready": False})
    assert http(f"{api}/v2/health/ready") == (400, {"ready": False})
    assert http(f"{api}/v2/health/live") == (200, {"live": True})  # live stays constant
    assert http(f"{runtime}/_local/faults", "DELETE")[0] == 204
    stack.fresh_router()
    assert http(f"{api}/v2/models/iris/ready") == (200, {"name": "iris", "ready": True})
    assert http(f"{api}/v2/health/ready") == (200, {"ready": True})


def test_fault_route_refuses_an_unknown_endpoint_status(stack: LocalStack) -> None:
    status, body = http(f"{stack.runtime.url}/_local/faults/iris", "PUT", {"endpoint_status": "Sleeping"})
    assert status == 400
    assert "endpoint_status 'Sleeping'" in body["error"]
