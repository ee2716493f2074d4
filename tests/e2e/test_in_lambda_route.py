"""End to end over real HTTP on 127.0.0.1: a model routed ``lambda`` answers through the local API from
onnxruntime inside the router, with the same Open Inference Protocol answer as iris behind the local
SageMaker runtime. The stack is what ``python -m local --config FILE`` starts."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.model_variants import write_models_with_variants
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import LocalStack, start_local_stack

pytestmark = pytest.mark.e2e
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
INFER = {"id": "e2e-1", "inputs": [{"name": "input", "shape": [3, 4], "datatype": "FP32", "data": ROWS}]}


@pytest.fixture(scope="module")
def stack(local_runtime: LocalSageMakerRuntime, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    config = write_models_with_variants(
        tmp_path_factory.mktemp("config"), {"iris-lambda": {"route": {"sync": "lambda"}}}
    )
    started = start_local_stack(api_port=0, runtime=local_runtime, config_path=str(config), async_options=None)
    try:
        yield started
    finally:
        started.stop()


def http(url: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_lambda_routed_iris_answers_over_http_as_the_sagemaker_route_does(stack: LocalStack) -> None:
    endpoint_calls = stack.runtime.sync_invocations["iris"]
    lambda_status, lambda_headers, from_lambda = http(f"{stack.api.url}/v2/models/iris-lambda/infer", INFER)
    assert stack.runtime.sync_invocations["iris"] == endpoint_calls  # it ran in the router, not in SageMaker
    endpoint_status, _, from_endpoint = http(f"{stack.api.url}/v2/models/iris/infer", INFER)
    assert stack.runtime.sync_invocations["iris"] == endpoint_calls + 1
    assert (lambda_status, endpoint_status) == (200, 200)
    assert lambda_headers["Content-Type"] == "application/json"
    assert from_lambda == {**from_endpoint, "model_name": "iris-lambda"}
    assert from_lambda["id"] == "e2e-1"
    labels = next(output for output in from_lambda["outputs"] if output["name"] == "label")
    assert (labels["shape"], labels["data"]) == ([3], [0, 2, 1])


def test_lambda_routed_iris_validates_and_describes_itself_over_http(stack: LocalStack) -> None:
    bad = {"inputs": [{**INFER["inputs"][0], "datatype": "INT8", "data": [[5, 3, 1, 0]] * 3}]}
    status, _, answer = http(f"{stack.api.url}/v2/models/iris-lambda/infer", bad)
    assert status == 400
    assert "input 'input'" in answer["error"]
    status, _, metadata = http(f"{stack.api.url}/v2/models/iris-lambda")
    assert (status, metadata["name"], metadata["inputs"][0]["shape"]) == (200, "iris-lambda", [-1, 4])
    assert http(f"{stack.api.url}/v2/models/iris-lambda/ready")[:1] == (200,)
