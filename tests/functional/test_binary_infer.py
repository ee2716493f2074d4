"""The binary tensor data extension end to end: through the router handler (events as the local API Gateway
builds them for a binary media type), to the local SageMaker runtime's iris model and back; and the serving
container taking it directly (SageMaker passes Triton's ``json-header-size`` content type on)."""

from __future__ import annotations

import base64
import io
import json
import struct
from typing import Any

import pytest

from functions.adapters.onnx_model import OnnxModel
from functions.config.models import load_models_config
from functions.handlers.router.app import RouterApp
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.stack import REPO_ROOT
from serving.service import InvocationService
from serving.wsgi import ContainerApp

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def binary_request(rows: list[list[float]], **request: Any) -> tuple[bytes, int]:
    raw = struct.pack(f"<{4 * len(rows)}f", *(value for row in rows for value in row))
    header = json.dumps({"inputs": [{"name": "input", "shape": [len(rows), 4], "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(raw)}}], **request}).encode()  # fmt: skip
    return header + raw, len(header)


def call(app: RouterApp, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    event = build_rest_event("POST", "/v2/models/iris/infer", headers, body)
    assert event is not None
    return app(event, LocalLambdaContext())


def read_result(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The answer as tritonclient's InferResult reads it: the header, then each binary output's bytes."""
    body = base64.b64decode(result["body"]) if result.get("isBase64Encoded") else result["body"].encode()
    headers = {**(result.get("headers") or {})}
    headers.update({name: ", ".join(values) for name, values in (result.get("multiValueHeaders") or {}).items()})
    length = headers.get("Inference-Header-Content-Length")
    if length is None:
        return json.loads(body), {}
    header = json.loads(body[: int(length)])
    tail, offset, raw = body[int(length) :], 0, {}
    for output in header["outputs"]:
        size = (output.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raw[output["name"]] = tail[offset : offset + size]
            offset += size
    assert offset == len(tail)
    return header, raw


BINARY_HEADERS = {"Content-Type": "application/octet-stream"}


def test_a_binary_request_answers_what_the_json_one_does(router_app: RouterApp, runtime: Any) -> None:
    body, length = binary_request(ROWS, outputs=[{"name": "label", "parameters": {"binary_data": False}}])
    result = call(router_app, body, {**BINARY_HEADERS, "Inference-Header-Content-Length": str(length)})
    json_body = json.dumps({"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                                        "data": ROWS}], "outputs": [{"name": "label"}]}).encode()  # fmt: skip
    expected = call(router_app, json_body, {"Content-Type": "application/json"})
    assert result["statusCode"] == 200
    assert read_result(result) == read_result(expected) == (
        {"model_name": "iris", "model_version": "1",
         "outputs": [{"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}]}, {},
    )  # fmt: skip


def test_binary_outputs_come_back_after_the_json_header(router_app: RouterApp, runtime: Any) -> None:
    body, length = binary_request(ROWS, parameters={"binary_data_output": True})
    result = call(router_app, body, {**BINARY_HEADERS, "inference-header-content-length": str(length)})
    assert (result["statusCode"], result["isBase64Encoded"]) == (200, True)
    assert result["multiValueHeaders"]["Content-Type"] == ["application/octet-stream"]
    header, raw = read_result(result)
    assert [(output["name"], output["parameters"]) for output in header["outputs"]] == [
        ("label", {"binary_data_size": 16}), ("probabilities", {"binary_data_size": 24}),
    ]  # fmt: skip
    assert struct.unpack("<2q", raw["label"]) == (0, 2)
    assert sum(struct.unpack("<6f", raw["probabilities"])[:3]) == pytest.approx(1.0, abs=1e-5)


def test_a_json_request_may_ask_for_binary_outputs(router_app: RouterApp, runtime: Any) -> None:
    body = json.dumps({"id": "j", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROWS[1]}],
                       "outputs": [{"name": "label", "parameters": {"binary_data": True}}]}).encode()  # fmt: skip
    header, raw = read_result(call(router_app, body, {"Content-Type": "application/json"}))
    assert header["id"] == "j"
    assert struct.unpack("<q", raw["label"]) == (2,)


@pytest.mark.parametrize(
    ("cut", "headers", "message"),
    [
        (0, {"Inference-Header-Content-Length": "10"}, "request body is not valid JSON"),
        (0, {"Inference-Header-Content-Length": "oops"}, "Inference-Header-Content-Length must be a byte count"),
        (5, {}, "input 'input': binary_data_size is 32 but only 27 bytes of the body are left"),
        (-1, {}, "input 'input': shape [2, 4] of FP32 is 32 bytes but binary_data_size is 28"),
    ],
)
def test_a_broken_binary_body_is_a_400_that_says_what_is_wrong(
    router_app: RouterApp, runtime: Any, cut: int, headers: dict[str, str], message: str
) -> None:
    body, length = binary_request(ROWS)
    if cut == -1:  # the size agrees with the bytes sent, not with the shape
        body = body[:length].replace(b'"binary_data_size": 32', b'"binary_data_size": 28') + body[length + 4 :]
        length -= 0
    elif cut:
        body = body[:-cut]
    result = call(router_app, body, {**BINARY_HEADERS, "Inference-Header-Content-Length": str(length), **headers})
    assert result["statusCode"] == 400
    assert message in json.loads(result["body"])["error"]


def test_the_server_metadata_advertises_the_extension(router_app: RouterApp) -> None:
    event = build_rest_event("GET", "/v2", {}, b"")
    assert event is not None
    assert json.loads(router_app(event, LocalLambdaContext())["body"])["extensions"] == ["binary_tensor_data"]


@pytest.fixture(scope="module")
def container() -> ContainerApp:
    iris = load_models_config().model("iris")
    assert iris is not None
    return ContainerApp(InvocationService(OnnxModel(iris, REPO_ROOT / iris.artifact)), 6 * 1024 * 1024)


def wsgi(app: ContainerApp, body: bytes, environ: dict[str, str]) -> tuple[str, dict[str, str], bytes]:
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answered.update(status=status, headers=dict(headers))

    chunks = app({"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "CONTENT_LENGTH": str(len(body)),
                  "wsgi.input": io.BytesIO(body), **environ}, start_response)  # type: ignore[arg-type]  # fmt: skip
    return answered["status"], answered["headers"], b"".join(chunks)


def test_the_container_speaks_triton_sagemaker_binary(container: ContainerApp) -> None:
    body, length = binary_request(ROWS, outputs=[{"name": "label", "parameters": {"binary_data": True}}])
    content_type = f"application/vnd.sagemaker-triton.binary+json;json-header-size={length}"
    status, headers, answer = wsgi(container, body, {"CONTENT_TYPE": content_type})
    assert status == "200 OK"
    header_length = int(headers["Inference-Header-Content-Length"])
    assert headers["Content-Type"] == f"application/vnd.sagemaker-triton.binary+json;json-header-size={header_length}"
    assert json.loads(answer[:header_length])["outputs"][0]["parameters"] == {"binary_data_size": 16}
    assert struct.unpack("<2q", answer[header_length:]) == (0, 2)


def test_the_container_takes_the_header_length_header_and_refuses_a_broken_body(container: ContainerApp) -> None:
    body, length = binary_request(ROWS)
    status, headers, answer = wsgi(container, body, {"HTTP_INFERENCE_HEADER_CONTENT_LENGTH": str(length)})
    assert (status, headers["Content-Type"]) == ("200 OK", "application/json")
    assert json.loads(answer)["outputs"][0]["data"] == [0, 2]
    status, _, answer = wsgi(container, body[:-1], {"HTTP_INFERENCE_HEADER_CONTENT_LENGTH": str(length)})
    assert status == "400 Bad Request"
    assert "binary_data_size is 32 but only 31 bytes" in json.loads(answer)["error"]
