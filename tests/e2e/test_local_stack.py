"""End to end over real HTTP on 127.0.0.1: local API -> router -> boto3 -> local SageMaker runtime -> onnxruntime."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.client import HTTPConnection
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest

from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import LocalStack, start_local_stack

pytestmark = pytest.mark.e2e
INFER = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture(scope="module")
def stack(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalStack]:
    started = start_local_stack(api_port=0, runtime=local_runtime)
    yield started
    started.stop()


def http(
    url: str, body: Any = None, method: str | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def test_curl_example_from_the_readme_answers_setosa(stack: LocalStack) -> None:
    status, headers, body = http(f"{stack.api.url}/v2/models/iris/infer", INFER)
    assert status == 200
    outputs = {output["name"]: output["data"] for output in body["outputs"]}
    assert outputs["label"] == [0]
    assert sum(outputs["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    assert headers["x-amzn-RequestId"]


@pytest.mark.parametrize("change", [{"datatype": "INT8", "data": [5, 3, 1, 0]}, {"shape": [2, 4]}])
def test_wrong_datatype_or_shape_is_400_naming_input(stack: LocalStack, change: dict[str, Any]) -> None:
    body = {"inputs": [{**INFER["inputs"][0], **change}]}
    status, _, answer = http(f"{stack.api.url}/v2/models/iris/infer", body)
    assert status == 400
    assert "input 'input'" in answer["error"]


def test_model_metadata_over_http(stack: LocalStack) -> None:
    status, _, body = http(f"{stack.api.url}/v2/models/iris")
    assert (status, body["inputs"][0]["shape"]) == (200, [-1, 4])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/models/iris/infer"), ("DELETE", "/v2/models/iris"), ("POST", "/v2/health/ready"),
     ("PUT", "/v2/models/iris/versions/1/infer"), ("POST", "/v2/models/iris/versions/1")],
)  # fmt: skip
def test_method_not_on_resource_gets_the_deployed_gateway_403(stack: LocalStack, method: str, path: str) -> None:
    # API Gateway's MISSING_AUTHENTICATION_TOKEN through the API's DEFAULT_4XX gateway response (infra/constructs/api.py).
    status, headers, body = http(f"{stack.api.url}{path}", method=method)
    assert (status, body) == (403, {"error": "Missing Authentication Token"})
    assert headers["Content-Type"] == "application/json"


def test_version_routes_over_http(stack: LocalStack) -> None:
    status, _, body = http(f"{stack.api.url}/v2/models/iris/versions/1/infer", {**INFER, "model_name": "iris"})
    assert (status, body["model_name"], body["model_version"]) == (200, "iris", "1")
    status, _, body = http(f"{stack.api.url}/v2/models/iris/versions/2")
    assert (status, body) == (404, {"error": "model 'iris' has no version '2' (versions: '1')"})


def test_a_chunked_body_is_read_and_the_connection_serves_the_next_request(stack: LocalStack) -> None:
    connection = HTTPConnection(urlsplit(stack.api.url).netloc, timeout=10)
    try:
        encoded = json.dumps(INFER).encode()
        chunks = iter([encoded[:10], encoded[10:40], encoded[40:]])
        connection.request("POST", "/v2/models/iris/infer", body=chunks, encode_chunked=True,
                           headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})  # fmt: skip
        first = connection.getresponse()
        assert (first.status, json.loads(first.read())["outputs"][0]["data"]) == (200, [0])
        connection.request("GET", "/v2/models/iris")  # the same connection
        second = connection.getresponse()
        assert (second.status, json.loads(second.read())["name"]) == (200, "iris")
    finally:
        connection.close()


def test_a_body_over_the_gateway_limit_is_413_and_closes_the_connection(stack: LocalStack) -> None:
    address = urlsplit(stack.api.url)
    with socket.create_connection((address.hostname or "", address.port or 80), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n{")
        answer = sock.makefile("rb").read()  # to EOF: the server closes the connection
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"Connection: close" in head
    assert json.loads(body) == {"error": "Request Too Long"}


def test_fault_set_over_http_reaches_the_caller(stack: LocalStack) -> None:
    runtime_url = stack.runtime.url
    assert http(f"{runtime_url}/_local/faults/iris", {"error": "ModelNotReadyException"}, method="PUT")[0] == 200
    try:
        status, headers, body = http(f"{stack.api.url}/v2/models/iris/infer", INFER)
        assert (status, headers["Retry-After"]) == (503, "1")
        assert "ModelNotReadyException" in body["error"]
    finally:
        assert http(f"{runtime_url}/_local/faults", method="DELETE")[0] == 204


def test_bad_fault_spec_is_400(stack: LocalStack) -> None:
    status, _, body = http(f"{stack.runtime.url}/_local/faults/iris", {"error": "Nope"}, method="PUT")
    assert status == 400
    assert "unknown error 'Nope'" in body["error"]


def test_unmodified_boto3_talks_to_the_local_runtime(stack: LocalStack) -> None:
    client = boto3.client("sagemaker-runtime", endpoint_url=stack.runtime.url, region_name="us-east-1")
    response = client.invoke_endpoint(EndpointName="iris", Body=json.dumps(INFER), ContentType="application/json")
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-invoked-production-variant"] == "AllTraffic"
    assert json.loads(response["Body"].read())["outputs"][0]["data"] == [0]
    with pytest.raises(client.exceptions.ValidationError, match="Endpoint nope of account 123456789012 not found"):
        client.invoke_endpoint(EndpointName="nope", Body=b"{}", ContentType="application/json")
