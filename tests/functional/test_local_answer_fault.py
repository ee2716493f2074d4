"""The local runtime's answer fault: an endpoint answers a given OIP response object (``answer``) or text
(``answer_body``) instead of running its model, on sync calls through unmodified boto3 and as an async job's
output object; an injected error still wins; every wrong spec is refused by name, in code and over HTTP."""

from __future__ import annotations

import io
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from functions.config.models import load_models_config
from local.sagemaker_runtime import AsyncEndpointSpec, FaultSpec, FaultSpecError, LocalSageMakerRuntime
from local.sagemaker_runtime.async_worker import AsyncEndpoints
from local.sagemaker_runtime.faults import FaultInjector
from local.stack import LOCAL_AWS_ENVIRONMENT, serverless_endpoints

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()
BROKEN = {"outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [1.7, 0.0, 0.0]}]}


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalSageMakerRuntime]:
    served = LocalSageMakerRuntime(serverless_endpoints(load_models_config())).start()
    yield served
    served.stop()


@pytest.fixture(autouse=True)
def no_faults(runtime: LocalSageMakerRuntime) -> Iterator[None]:
    yield
    runtime.clear_faults()


@pytest.fixture(scope="module")
def sagemaker(runtime: LocalSageMakerRuntime) -> Any:
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=runtime.url,
        region_name=LOCAL_AWS_ENVIRONMENT["AWS_REGION"],
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=Config(retries={"total_max_attempts": 1}),
    )


def invoke(sagemaker: Any) -> tuple[str, bytes]:
    response = sagemaker.invoke_endpoint(EndpointName="iris", Body=BODY, ContentType="application/json")
    return str(response["ContentType"]), bytes(response["Body"].read())


def put_fault(runtime: LocalSageMakerRuntime, document: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"{runtime.url}/_local/faults/iris", data=json.dumps(document).encode(), method="PUT"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_sync_call_answers_the_given_object_instead_of_the_model(
    runtime: LocalSageMakerRuntime, sagemaker: Any
) -> None:
    _, model_answer = invoke(sagemaker)
    assert json.loads(model_answer)["outputs"][0]["name"] == "label"  # the model itself, before the fault
    status, echoed = put_fault(runtime, {"answer": BROKEN})
    assert (status, echoed["answer"]) == (200, BROKEN)
    content_type, body = invoke(sagemaker)
    assert (content_type, json.loads(body)) == ("application/json", BROKEN)
    runtime.clear_faults()
    assert json.loads(invoke(sagemaker)[1]) == json.loads(model_answer)


def test_answer_body_is_answered_byte_for_byte(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    text = '{"outputs":[{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[NaN,0.5,0.5]}]}'
    runtime.set_fault("iris", FaultSpec(answer_body=text))
    assert invoke(sagemaker)[1] == text.encode()


def test_an_injected_error_wins_over_the_answer(runtime: LocalSageMakerRuntime, sagemaker: Any) -> None:
    runtime.set_fault("iris", FaultSpec(errors={"InternalFailure": 1.0}, answer=BROKEN))
    with pytest.raises(ClientError) as raised:
        invoke(sagemaker)
    assert raised.value.response["Error"]["Code"] == "InternalFailure"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            {"answer": BROKEN, "answer_body": "{}"},
            "give answer (an OIP response object) or answer_body (text), not both",
        ),
        ({"answer": [1, 2]}, "answer is an OIP response object"),
        ({"answer": "text"}, "answer is an OIP response object"),
        ({"answer_body": {"outputs": []}}, "answer_body is the answer's text"),
    ],
)
def test_wrong_answer_specs_are_refused(runtime: LocalSageMakerRuntime, document: dict[str, Any], message: str) -> None:
    with pytest.raises(FaultSpecError, match=re.escape(message)):
        FaultSpec.from_json(document)
    status, refused = put_fault(runtime, document)
    assert status == 400
    assert message in json.dumps(refused)


def test_an_answer_that_is_not_json_is_refused_in_code() -> None:
    with pytest.raises(FaultSpecError, match="answer must be JSON"):
        FaultSpec(answer={"outputs": {1, 2}})


class MemoryS3:
    """The two S3 calls the async worker makes, on a dict."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def put_object(self, Bucket: str, Key: str, Body: bytes, ContentType: str) -> None:  # noqa: N803
        self.objects[(Bucket, Key)] = Body


def test_an_async_job_writes_the_answer_as_its_output_object() -> None:
    service = serverless_endpoints(load_models_config())["iris"]
    s3 = MemoryS3()
    s3.objects[("bucket", "input/iris-async/1.json")] = BODY
    faults = FaultInjector(time.monotonic)
    spec = AsyncEndpointSpec(service, "s3://bucket/output/", "s3://bucket/failure/")
    endpoints = AsyncEndpoints({"iris-async": spec}, faults, s3=s3)
    endpoints.start()
    try:
        outputs = []
        for fault in (FaultSpec(answer=BROKEN), FaultSpec()):
            faults.set("iris-async", fault)
            reply = endpoints.submit(
                "iris-async", {"X-Amzn-SageMaker-InputLocation": "s3://bucket/input/iris-async/1.json"}, ()
            )
            assert reply is not None
            assert reply[0].status == 202
            assert endpoints.wait_idle(10)
            outputs.append(s3.objects[tuple(reply[1]["X-Amzn-SageMaker-OutputLocation"][5:].split("/", 1))])
    finally:
        endpoints.stop()
    assert json.loads(outputs[0]) == BROKEN
    assert json.loads(outputs[1])["outputs"][0]["name"] == "label"  # without the fault the model answers
