"""Real Open Inference Protocol clients against the local API, unchanged: tritonclient over HTTP, and the requests
the kserve SDK's ``InferenceRESTClient`` sends (recorded in tests/fixtures/kserve_requests.json, see
tests/fixtures/record_kserve_requests.py). Every answer is checked against the protocol's REST schemas
(tests/fixtures/oip_schemas.json)."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
import tritonclient.http as triton
from jsonschema import Draft202012Validator
from tritonclient.utils import InferenceServerException

from local.sagemaker_runtime import LocalSageMakerRuntime
from local.sagemaker_runtime.faults import FaultSpec
from local.stack import LocalStack, start_local_stack

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SCHEMAS: dict[str, Any] = json.loads((FIXTURES / "oip_schemas.json").read_text())
KSERVE: dict[str, Any] = json.loads((FIXTURES / "kserve_requests.json").read_text())
ROWS = np.array(KSERVE["rows"], dtype=np.float32)
LABELS = [0, 2]  # what iris answers for ROWS


def conforms(schema: str, body: Any) -> Any:
    """``body``, after checking it against the named OIP response schema."""
    Draft202012Validator({"$defs": SCHEMAS["$defs"], **SCHEMAS[schema]}).validate(body)
    return body


@pytest.fixture(scope="module")
def stack(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalStack]:
    started = start_local_stack(api_port=0, runtime=local_runtime, async_options=None)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(stack: LocalStack) -> Iterator[triton.InferenceServerClient]:
    opened = triton.InferenceServerClient(urlsplit(stack.api.url).netloc, concurrency=4, network_timeout=30.0)
    yield opened
    opened.close()


def exchange(
    stack: LocalStack, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """One request over a fresh connection, headers exactly as given (http.client adds only Host)."""
    connection = http.client.HTTPConnection(urlsplit(stack.api.url).netloc, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {name.lower(): value for name, value in response.getheaders()}, response.read()
    finally:
        connection.close()


def json_answer(stack: LocalStack, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    raw = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    status, _, answer = exchange(stack, method, path, raw, headers)
    return status, json.loads(answer)


def triton_input(rows: np.ndarray, *, binary: bool) -> triton.InferInput:
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    return tensor


def json_outputs(*names: str) -> list[triton.InferRequestedOutput]:
    return [triton.InferRequestedOutput(name, binary_data=False) for name in names or ("label", "probabilities")]


def test_server_health_and_metadata_conform(client: triton.InferenceServerClient, stack: LocalStack) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = conforms("server_metadata", client.get_server_metadata())
    assert metadata["name"] == "inference-router"
    assert conforms("server_live", json_answer(stack, "GET", "/v2/health/live")[1]) == {"live": True}
    assert conforms("server_ready", json_answer(stack, "GET", "/v2/health/ready")[1])["ready"] is True


def test_model_metadata_and_readiness(client: triton.InferenceServerClient) -> None:
    metadata = conforms("model_metadata", client.get_model_metadata("iris"))
    assert (metadata["name"], metadata["versions"]) == ("iris", ["1"])
    assert [tensor["name"] for tensor in metadata["outputs"]] == ["label", "probabilities"]
    assert client.is_model_ready("iris")


def test_json_infer_answers_both_outputs_as_json(client: triton.InferenceServerClient) -> None:
    result = client.infer("iris", [triton_input(ROWS, binary=False)], outputs=json_outputs(), request_id="json-1")
    response = conforms("inference_response", result.get_response())
    assert (response["model_name"], response["model_version"], response["id"]) == ("iris", "1", "json-1")
    assert all("data" in output for output in response["outputs"])
    assert result.as_numpy("label").tolist() == LABELS
    probabilities = result.as_numpy("probabilities")
    assert probabilities.shape == (2, 3)
    assert probabilities.sum(axis=1) == pytest.approx([1.0, 1.0], abs=1e-5)


def test_requested_outputs_answer_only_the_one_asked_for(client: triton.InferenceServerClient) -> None:
    result = client.infer("iris", [triton_input(ROWS, binary=False)], outputs=json_outputs("probabilities"))
    response = conforms("inference_response", result.get_response())
    assert [output["name"] for output in response["outputs"]] == ["probabilities"]
    assert result.as_numpy("label") is None


def test_async_infer_runs_concurrent_requests_each_with_its_own_answer(client: triton.InferenceServerClient) -> None:
    batches = [np.repeat(ROWS[index % 2 : index % 2 + 1], index + 1, axis=0) for index in range(8)]
    pending = [
        client.async_infer(
            "iris", [triton_input(batch, binary=False)], outputs=json_outputs("label"), request_id=f"async-{index}"
        )
        for index, batch in enumerate(batches)
    ]
    results = [request.get_result() for request in pending]
    for index, result in enumerate(results):
        response = conforms("inference_response", result.get_response())
        assert response["id"] == f"async-{index}"
        assert result.as_numpy("label").tolist() == [LABELS[index % 2]] * (index + 1)


def test_an_endpoint_not_in_service_reads_not_ready_to_tritonclient_and_over_http(
    client: triton.InferenceServerClient, stack: LocalStack
) -> None:
    stack.fresh_router()  # readiness caches the endpoint's status per environment
    stack.runtime.set_fault("iris", FaultSpec(endpoint_status="Creating"))
    try:
        assert not client.is_model_ready("iris")
        assert not client.is_server_ready()
        status, body = json_answer(stack, "GET", "/v2/models/iris/ready")
        assert (status, body["ready"]) == (400, False)  # the kserve SDK's is_model_ready: the status alone
        status, body = json_answer(stack, "GET", "/v2/health/ready")
        assert (status, conforms("server_ready", body)["ready"]) == (400, False)
    finally:
        stack.runtime.clear_faults()
        stack.fresh_router()
    assert client.is_model_ready("iris")
    assert client.is_server_ready()


def test_unknown_model_is_a_404_error_object(client: triton.InferenceServerClient, stack: LocalStack) -> None:
    with pytest.raises(InferenceServerException, match="'nope'") as refused:
        client.get_model_metadata("nope")
    assert refused.value.status() == "404"
    assert not client.is_model_ready("nope")
    status, body = json_answer(stack, "GET", "/v2/models/nope")
    assert status == 404
    assert "'nope'" in conforms("error", body)["error"]


def test_a_wrong_datatype_is_a_400_error_object_naming_the_input(
    client: triton.InferenceServerClient, stack: LocalStack
) -> None:
    wrong = triton.InferInput("input", [2, 4], "FP64")
    wrong.set_data_from_numpy(ROWS.astype(np.float64), binary_data=False)
    with pytest.raises(InferenceServerException, match="input 'input'") as refused:
        client.infer("iris", [wrong], outputs=json_outputs())
    assert refused.value.status() == "400"
    body = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP64", "data": ROWS.ravel().tolist()}]}
    status, answer = json_answer(stack, "POST", "/v2/models/iris/infer", body)
    assert status == 400
    assert "input 'input'" in conforms("error", answer)["error"]


def test_versioned_metadata_and_readiness_match_the_unversioned(client: triton.InferenceServerClient) -> None:
    assert conforms("model_metadata", client.get_model_metadata("iris", "1")) == client.get_model_metadata("iris")
    assert client.is_model_ready("iris", "1")


def test_model_version_1_infers_as_the_unversioned_route(client: triton.InferenceServerClient) -> None:
    result = client.infer("iris", [triton_input(ROWS, binary=False)], model_version="1", outputs=json_outputs())
    response = conforms("inference_response", result.get_response())
    assert (response["model_name"], response["model_version"]) == ("iris", "1")
    plain = client.infer("iris", [triton_input(ROWS, binary=False)], outputs=json_outputs())
    assert result.as_numpy("label").tolist() == LABELS
    assert np.array_equal(result.as_numpy("probabilities"), plain.as_numpy("probabilities"))


def test_an_unknown_version_is_a_404_naming_the_versions(
    client: triton.InferenceServerClient, stack: LocalStack
) -> None:
    with pytest.raises(InferenceServerException, match=r"'9'.*versions.*'1'") as refused:
        client.infer("iris", [triton_input(ROWS, binary=False)], model_version="9", outputs=json_outputs())
    assert refused.value.status() == "404"
    assert not client.is_model_ready("iris", "9")
    for path in ["/v2/models/iris/versions/9", "/v2/models/iris/versions/9/ready"]:
        status, body = json_answer(stack, "GET", path)
        assert status == 404
        assert "'9'" in conforms("error", body)["error"]


def test_server_metadata_advertises_binary_tensor_data(client: triton.InferenceServerClient) -> None:
    assert "binary_tensor_data" in conforms("server_metadata", client.get_server_metadata())["extensions"]


@pytest.mark.parametrize("binary_input", [True, False])
def test_binary_outputs_carry_the_same_tensors_as_json(
    client: triton.InferenceServerClient, binary_input: bool
) -> None:
    as_json = client.infer("iris", [triton_input(ROWS, binary=False)], outputs=json_outputs())
    outputs = [triton.InferRequestedOutput(name, binary_data=True) for name in ("label", "probabilities")]
    as_binary = client.infer("iris", [triton_input(ROWS, binary=binary_input)], outputs=outputs)
    response = conforms("inference_response", as_binary.get_response())
    sizes = {output["name"]: output["parameters"]["binary_data_size"] for output in response["outputs"]}
    assert sizes == {"label": 2 * 8, "probabilities": 2 * 3 * 4}  # INT64 [2], FP32 [2, 3]
    assert as_binary.as_numpy("label").tolist() == LABELS
    assert np.array_equal(as_binary.as_numpy("probabilities"), as_json.as_numpy("probabilities"))


def test_tritonclient_defaults_are_binary_both_ways(client: triton.InferenceServerClient) -> None:
    """No outputs named: tritonclient asks binary_data_output=true and sends the input as raw bytes."""
    result = client.infer("iris", [triton_input(ROWS, binary=True)])
    response = conforms("inference_response", result.get_response())
    assert all("binary_data_size" in output["parameters"] for output in response["outputs"])
    assert result.as_numpy("label").tolist() == LABELS


def test_a_binary_request_with_a_wrong_byte_count_is_a_400_error_object(stack: LocalStack) -> None:
    header = {
        "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "parameters": {"binary_data_size": 32}}]
    }
    raw_header = json.dumps(header).encode()
    status, _, answer = exchange(
        stack,
        "POST",
        "/v2/models/iris/infer",
        raw_header + ROWS.tobytes()[:28],
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(raw_header))},
    )
    assert status == 400
    assert "input 'input'" in conforms("error", json.loads(answer))["error"]


@pytest.mark.parametrize("case", ["server_live", "server_ready", "model_ready"])
def test_kserve_sdk_health_requests_get_what_the_sdk_reads(stack: LocalStack, case: str) -> None:
    sent = KSERVE["cases"][case]
    status, _, raw = exchange(stack, sent["method"], sent["path"], None, sent["headers"])
    assert status == 200  # is_model_ready is the status alone
    answer = json.loads(raw)
    if case == "server_live":
        assert conforms("server_live", answer)["live"] is True  # is_server_live reads .get("live")
    if case == "server_ready":
        assert conforms("server_ready", answer)["ready"] is True  # is_server_ready reads .get("ready")


def recorded_body(sent: dict[str, Any]) -> bytes:
    if "body_base64" in sent:
        return base64.b64decode(sent["body_base64"])
    return str(sent["body_text"]).encode()


@pytest.mark.parametrize("case", [name for name in KSERVE["cases"] if name.startswith("infer_")])
def test_kserve_sdk_infer_requests_are_answered_unchanged(stack: LocalStack, case: str) -> None:
    sent = KSERVE["cases"][case]
    body = recorded_body(sent)
    headers = {name: value for name, value in sent["headers"].items() if name != "content-length"}
    status, answer_headers, raw = exchange(stack, sent["method"], sent["path"], body, headers)
    assert status == 200, raw
    # InferResponse.from_bytes reads the JSON header up to Inference-Header-Content-Length, else the whole body.
    answer = json.loads(raw[: int(answer_headers.get("inference-header-content-length", len(raw)))])
    conforms("inference_response", answer)
    header_length = int(sent["headers"].get("inference-header-content-length", len(body)))
    request = json.loads(body[:header_length])
    assert (answer["model_name"], answer["id"]) == ("iris", request["id"])
    outputs = {output["name"]: output["data"] for output in answer["outputs"]}
    assert outputs["label"] == LABELS
    if "outputs" in request:
        assert list(outputs) == [output["name"] for output in request["outputs"]]


def test_a_model_name_contradicting_the_path_is_a_400_error_object(stack: LocalStack) -> None:
    request = json.loads(KSERVE["cases"]["infer_json"]["body_text"])
    status, answer = json_answer(stack, "POST", "/v2/models/iris/infer", {**request, "model_name": "other"})
    assert status == 400
    message = conforms("error", answer)["error"]
    assert "model_name 'other'" in message
    assert "'iris'" in message
