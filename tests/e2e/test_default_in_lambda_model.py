"""End to end over real HTTP on 127.0.0.1: the default config's digits answers through the local API from
onnxruntime inside the router (what ``make local`` serves), refuses a pixel outside 0..16 naming the input and
element, and describes itself; iris keeps answering from the local SageMaker runtime next to it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.sagemaker_runtime import LocalSageMakerRuntime
from local.sample_events import DIGITS_OUT_OF_RANGE, DIGITS_ZERO
from local.stack import LocalStack, start_local_stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalStack]:
    started = start_local_stack(api_port=0, runtime=local_runtime, async_options=None)
    try:
        yield started
    finally:
        started.stop()


def http(url: str, body: Any = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def digits(pixels: list[float]) -> dict[str, Any]:
    return {"id": "e2e-digits", "inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": pixels}]}


def test_digits_answers_from_the_router_and_iris_from_the_endpoint(stack: LocalStack) -> None:
    endpoint_calls = dict(stack.runtime.sync_invocations)
    status, answer = http(f"{stack.api.url}/v2/models/digits/infer", digits(DIGITS_ZERO))
    assert stack.runtime.sync_invocations == endpoint_calls  # ran in the router, not in SageMaker
    assert status == 200
    assert (answer["model_name"], answer["id"]) == ("digits", "e2e-digits")
    label = next(output for output in answer["outputs"] if output["name"] == "label")
    assert (label["shape"], label["data"]) == ([1], [0])
    iris = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
    assert http(f"{stack.api.url}/v2/models/iris/infer", iris)[0] == 200
    assert stack.runtime.sync_invocations["iris"] == endpoint_calls.get("iris", 0) + 1


def test_digits_refuses_an_out_of_range_pixel_naming_it(stack: LocalStack) -> None:
    status, answer = http(f"{stack.api.url}/v2/models/digits/infer", digits(DIGITS_OUT_OF_RANGE))
    assert status == 400
    assert "input 'pixels': element 9 is 17, outside the declared range [0, 16]" in answer["error"]


def test_digits_metadata_ready_and_the_server_ready(stack: LocalStack) -> None:
    status, metadata = http(f"{stack.api.url}/v2/models/digits")
    assert (status, metadata["inputs"]) == (200, [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}])
    assert http(f"{stack.api.url}/v2/models/digits/ready") == (200, {"name": "digits", "ready": True})
    assert http(f"{stack.api.url}/v2/health/ready") == (200, {"ready": True})
