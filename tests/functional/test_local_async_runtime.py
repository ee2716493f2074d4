"""The local runtime's async endpoints through unmodified boto3 ``invoke_endpoint_async``: S3 input, worker,
output or failure object, and SageMaker's InferenceResult notification through SNS into the result queue."""

from __future__ import annotations

import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from functions.config.models import load_models_config, parse_models_config
from local.async_endpoints import REPO_ROOT, async_endpoint_specs
from local.aws import AsyncResources, LocalAsyncResources, LocalAws, aws_client, create_async_resources
from local.sagemaker_runtime import AsyncEndpointSpec, FaultSpec, LocalSageMakerRuntime
from local.stack import LOCAL_AWS_ENVIRONMENT, serverless_endpoints

ASYNC_ENDPOINT = "iris-async"
VALID = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
WRONG_DATATYPE = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT8", "data": [5, 3, 1, 0]}]}
NOTIFICATION_KEYS = {
    "awsRegion", "eventTime", "receivedTime", "invocationStatus", "requestParameters", "responseParameters",
    "inferenceId", "eventVersion", "eventSource", "eventName",
}  # fmt: skip


class AsyncWorld:
    """moto, the resources, the runtime and the clients a test talks through."""

    def __init__(self, aws: LocalAws, resources: AsyncResources, runtime: LocalSageMakerRuntime) -> None:
        self.aws, self.resources, self.runtime = aws, resources, runtime
        self.s3 = aws_client("s3", aws.url)
        self.sqs = aws_client("sqs", aws.url)
        self.sagemaker: Any = None
        self.inputs = 0
        # The result queue gets raw messages, as the templates subscribe it; this tap queue gets SNS envelopes,
        # which say which topic the runtime published to.
        self.tap_url = self.sqs.create_queue(QueueName=resources.result_queue_url.rsplit("/", 1)[-1] + "-tap")[
            "QueueUrl"
        ]
        tap_arn = self.sqs.get_queue_attributes(QueueUrl=self.tap_url, AttributeNames=["QueueArn"])["Attributes"]
        sns = aws_client("sns", aws.url)
        for topic_arn in (resources.success_topic_arn, resources.error_topic_arn):
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=tap_arn["QueueArn"])

    def put_input(self, request: Any) -> str:
        self.inputs += 1
        key = f"input/{ASYNC_ENDPOINT}/{self.inputs}.json"
        self.s3.put_object(Bucket=self.resources.bucket, Key=key, Body=json.dumps(request).encode())
        return f"s3://{self.resources.bucket}/{key}"

    def submit(self, request: Any, inference_id: str, **extra: Any) -> dict[str, Any]:
        response: dict[str, Any] = self.sagemaker.invoke_endpoint_async(
            EndpointName=ASYNC_ENDPOINT, InputLocation=self.put_input(request), InferenceId=inference_id,
            ContentType="application/json", **extra,
        )  # fmt: skip
        return response

    def read(self, uri: str) -> bytes:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def key_of(self, uri: str) -> str:
        return uri.removeprefix(f"s3://{self.resources.bucket}/")

    def keys(self, prefix: str) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=self.resources.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification published so far, as SNS envelopes (from the tap queue), deleted as read; the
        result queue's raw copies are checked to be the same events. Publishing is synchronous in moto, so
        after ``wait_async_idle`` the queues already hold all there will be."""
        envelopes, raw = self._drain(self.tap_url), self._drain(self.resources.result_queue_url)
        assert sorted(json.dumps(json.loads(e["Message"]), sort_keys=True) for e in envelopes) == sorted(
            json.dumps(r, sort_keys=True) for r in raw
        )
        return envelopes

    def _drain(self, url: str) -> list[dict[str, Any]]:
        bodies = []
        while messages := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def idle(self) -> None:
        assert self.runtime.wait_async_idle(10), "async workers did not drain within 10 s"
        assert self.runtime.async_stats.worker_errors == []


@pytest.fixture(scope="module")
def world_module() -> Iterator[AsyncWorld]:
    aws = LocalAws().start()
    resources = create_async_resources(aws.url, LocalAsyncResources.unique("rt"))
    services = serverless_endpoints(load_models_config())
    spec = AsyncEndpointSpec(
        services["iris"], resources.output_path, resources.failure_path,
        resources.success_topic_arn, resources.error_topic_arn, max_concurrent_invocations=3,
    )  # fmt: skip
    runtime = LocalSageMakerRuntime(services, async_endpoints={ASYNC_ENDPOINT: spec}, aws_endpoint_url=aws.url)
    runtime.start()
    world = AsyncWorld(aws, resources, runtime)
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LOCAL_AWS_ENVIRONMENT.items():
            patch.setenv(name, value)
        # Unmodified boto3, finding the runtime through the variable the router's client reads; no retries,
        # so a refused submit surfaces as the error SageMaker sent.
        patch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", runtime.url)
        world.sagemaker = boto3.client("sagemaker-runtime", config=Config(retries={"total_max_attempts": 1}))
    yield world
    runtime.stop()
    aws.stop()


@pytest.fixture
def world(world_module: AsyncWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[AsyncWorld]:
    for name, value in LOCAL_AWS_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)  # the drain test's own client signs with these
    world_module.runtime.seed(11)
    world_module.runtime.reset_async_stats()
    yield world_module
    world_module.runtime.clear_faults()
    world_module.runtime.wait_async_idle(10)
    world_module.notifications()


def test_async_output_equals_the_sync_answer(world: AsyncWorld) -> None:
    response = world.submit(VALID, "job-equal")
    world.idle()
    assert response["InferenceId"] == "job-equal"
    output, failure = response["OutputLocation"], response["FailureLocation"]
    assert output.startswith(world.resources.output_path)
    assert output.endswith(".out")
    assert failure == f"{world.resources.failure_path}{output.removeprefix(world.resources.output_path)[:-4]}-error.out"
    sync = world.sagemaker.invoke_endpoint(EndpointName="iris", Body=json.dumps(VALID), ContentType="application/json")
    assert world.read(output) == sync["Body"].read()
    assert json.loads(world.read(output))["outputs"][0]["data"] == [0]
    assert world.keys("failure/") == []


def test_success_notification_reaches_the_queue_in_sagemaker_format(world: AsyncWorld) -> None:
    response = world.submit(VALID, "job-notified", Accept="application/json")
    world.idle()
    (envelope,) = world.notifications()
    assert envelope["TopicArn"] == world.resources.success_topic_arn
    event = json.loads(envelope["Message"])
    assert set(event) == NOTIFICATION_KEYS
    assert event["invocationStatus"] == "Completed"
    assert event["inferenceId"] == "job-notified"
    assert (event["eventName"], event["eventSource"], event["eventVersion"]) == (
        "InferenceResult",
        "aws:sagemaker",
        "1.0",
    )
    assert event["awsRegion"] == "us-east-1"
    assert event["requestParameters"] == {
        "contentType": "application/json",
        "accept": "application/json",
        "endpointName": ASYNC_ENDPOINT,
        "inputLocation": f"s3://{world.resources.bucket}/input/{ASYNC_ENDPOINT}/{world.inputs}.json",
    }
    assert event["responseParameters"] == {
        "contentType": "application/json",
        "outputLocation": response["OutputLocation"],
    }
    received, finished = (
        datetime.fromisoformat(event[k].replace("Z", "+00:00")) for k in ("receivedTime", "eventTime")
    )
    assert received <= finished
    assert event["eventTime"].endswith("Z")


def test_model_error_writes_failure_object_and_error_notification_with_its_message(world: AsyncWorld) -> None:
    response = world.submit(WRONG_DATATYPE, "job-bad-datatype")
    world.idle()
    assert world.key_of(response["OutputLocation"]) not in world.keys("output/")
    failure = json.loads(world.read(response["FailureLocation"]))
    assert failure == {"error": "input 'input': datatype INT8 does not match the model's FP32"}
    (envelope,) = world.notifications()
    assert envelope["TopicArn"] == world.resources.error_topic_arn
    event = json.loads(envelope["Message"])
    assert set(event) == NOTIFICATION_KEYS | {"failureReason"}
    assert event["invocationStatus"] == "Failed"
    assert event["inferenceId"] == "job-bad-datatype"
    assert "Received client error (400) from model" in event["failureReason"]
    assert "datatype INT8 does not match the model's FP32" in event["failureReason"]
    assert event["responseParameters"]["failureLocation"] == response["FailureLocation"]


def test_model_error_fault_set_over_http_fails_async_jobs(world: AsyncWorld) -> None:
    fault = json.dumps({"error": "ModelError", "model_status": 503}).encode()
    request = urllib.request.Request(f"{world.runtime.url}/_local/faults/{ASYNC_ENDPOINT}", data=fault, method="PUT")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert json.loads(answer.read())["drop_notification_rate"] == 0.0
    response = world.submit(VALID, "job-injected")  # the submit itself is accepted: the model fails later
    world.idle()
    assert json.loads(world.read(response["FailureLocation"])) == {"error": "injected model failure"}
    (envelope,) = world.notifications()
    reason = json.loads(envelope["Message"])["failureReason"]
    assert "Received server error (503) from model" in reason
    assert "injected model failure" in reason


def test_dropped_notification_still_writes_the_output(world: AsyncWorld) -> None:
    world.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(drop_notification_rate=1.0))
    response = world.submit(VALID, "job-lost-notification")
    world.idle()
    assert json.loads(world.read(response["OutputLocation"]))["model_name"] == "iris"
    assert world.notifications() == []
    assert world.runtime.async_stats.notifications_dropped == 1


@pytest.mark.parametrize(
    ("error", "status"), [("ServiceUnavailable", 503), ("ThrottlingException", 400), ("InternalFailure", 500)]
)
def test_refused_submit_raises_the_error_and_writes_nothing(world: AsyncWorld, error: str, status: int) -> None:
    world.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error=error))
    outputs_before = world.keys("output/") + world.keys("failure/")
    with pytest.raises(ClientError) as raised:
        world.submit(VALID, f"job-refused-{error}")
    assert raised.value.response["Error"]["Code"] == error
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    world.idle()
    assert world.keys("output/") + world.keys("failure/") == outputs_before
    assert world.notifications() == []
    assert (world.runtime.async_stats.accepted, world.runtime.async_stats.refused) == (0, 1)


def test_unknown_endpoint_is_the_same_validation_error_as_sync(world: AsyncWorld) -> None:
    with pytest.raises(ClientError) as raised_async:
        world.sagemaker.invoke_endpoint_async(EndpointName="nope", InputLocation=world.put_input(VALID))
    with pytest.raises(ClientError) as raised_sync:
        world.sagemaker.invoke_endpoint(EndpointName="nope", Body=b"{}")
    assert raised_async.value.response["Error"] == raised_sync.value.response["Error"]
    assert raised_async.value.response["Error"] == {
        "Code": "ValidationError",
        "Message": "Endpoint nope of account 123456789012 not found.",
    }


def test_input_that_cannot_be_read_fails_the_job(world: AsyncWorld) -> None:
    missing = f"s3://{world.resources.bucket}/input/never-written.json"
    response = world.sagemaker.invoke_endpoint_async(
        EndpointName=ASYNC_ENDPOINT, InputLocation=missing, InferenceId="job-missing-input"
    )
    world.idle()
    (envelope,) = world.notifications()
    event = json.loads(envelope["Message"])
    assert event["invocationStatus"] == "Failed"
    assert f"Unable to read input from {missing}" in event["failureReason"]
    assert "NoSuchKey" in json.loads(world.read(response["FailureLocation"]))["error"]


def test_model_slower_than_invocation_timeout_fails_at_the_timeout(world: AsyncWorld) -> None:
    world.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(latency_ms=5000))
    response = world.submit(VALID, "job-slow", InvocationTimeoutSeconds=1)
    world.idle()
    (envelope,) = world.notifications()
    assert "did not respond within 1 seconds" in json.loads(envelope["Message"])["failureReason"]
    assert world.key_of(response["OutputLocation"]) not in world.keys("output/")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"InvocationTimeoutSeconds": 3601}, "InvocationTimeoutSeconds"),
        ({"RequestTTLSeconds": 21_601}, "RequestTTLSeconds"),  # botocore itself checks only the minimum
        ({"InputLocation": "https://example.com/x"}, "InputLocation"),
        ({"InputLocation": "s3://bucket-without-key/"}, "InputLocation"),
        ({"InputLocation": "s3:///key-without-bucket"}, "InputLocation"),
    ],
)
def test_out_of_range_parameters_are_validation_errors(
    world: AsyncWorld, parameters: dict[str, Any], message: str
) -> None:
    arguments = {"EndpointName": ASYNC_ENDPOINT, "InputLocation": world.put_input(VALID), **parameters}
    with pytest.raises(ClientError) as raised:
        world.sagemaker.invoke_endpoint_async(**arguments)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert message in raised.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("paths", "concurrency", "message"),
    [
        (("s3://bucket/output", "s3://bucket/failure/"), 1, "output_path 's3://bucket/output' must be"),
        (("s3://bucket/output/", "bucket/failure/"), 1, "failure_path 'bucket/failure/' must be"),
        (("s3://bucket/output/", "s3://bucket/failure/"), 0, "max_concurrent_invocations 0 must be at least 1"),
    ],
)
def test_async_endpoint_spec_refuses_paths_that_are_not_s3_prefixes(
    world: AsyncWorld, paths: tuple[str, str], concurrency: int, message: str
) -> None:
    service = world.runtime.async_endpoints[ASYNC_ENDPOINT].service
    with pytest.raises(ValueError, match=re.escape(message)):
        AsyncEndpointSpec(service, *paths, max_concurrent_invocations=concurrency)


def test_seeded_error_rate_fails_the_same_jobs_whatever_the_worker_order(world: AsyncWorld) -> None:
    def failed_ids() -> set[str]:
        world.runtime.seed(5)
        world.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ModelError", error_rate=0.5))
        for index in range(8):
            world.submit(VALID, f"job-{index}")
        world.idle()
        events = [json.loads(envelope["Message"]) for envelope in world.notifications()]
        assert len(events) == 8  # every job ends with exactly one notification
        return {e["inferenceId"] for e in events if e["invocationStatus"] == "Failed"}

    first, second = failed_ids(), failed_ids()
    assert first == second
    assert 0 < len(first) < 8


def test_stop_with_drain_finishes_queued_work(world: AsyncWorld) -> None:
    spec = world.runtime.async_endpoints[ASYNC_ENDPOINT]
    runtime = LocalSageMakerRuntime({}, async_endpoints={"drain": spec}, aws_endpoint_url=world.aws.url).start()
    runtime.set_fault("drain", FaultSpec(latency_ms=50))
    client = boto3.client("sagemaker-runtime", endpoint_url=runtime.url)
    responses = [
        client.invoke_endpoint_async(EndpointName="drain", InputLocation=world.put_input(VALID)) for _ in range(3)
    ]
    runtime.stop(drain_timeout_s=5)
    assert runtime.async_stats.completed == 3
    for response in responses:
        assert json.loads(world.read(response["OutputLocation"]))["model_name"] == "iris"
    assert len(world.notifications()) == 3


def test_config_async_routes_become_async_endpoints_wired_to_the_resources(world: AsyncWorld) -> None:
    document = json.loads((REPO_ROOT / "functions" / "models.json").read_text())
    document["models"][0]["route"]["async_endpoint"] = "iris-gpu"
    config = parse_models_config(document)
    specs = async_endpoint_specs(config, world.resources, max_concurrent_invocations=2)
    assert list(specs) == ["iris-gpu"]
    spec = specs["iris-gpu"]
    assert (spec.output_path, spec.failure_path) == (
        f"{world.resources.output_path}iris-gpu/",
        f"{world.resources.failure_path}iris-gpu/",
    )
    assert (spec.success_topic_arn, spec.error_topic_arn) == (
        world.resources.success_topic_arn,
        world.resources.error_topic_arn,
    )
    assert spec.max_concurrent_invocations == 2
    assert json.loads(spec.service.invoke(json.dumps(VALID).encode()).body)["outputs"][0]["data"] == [0]
    document["models"][0]["route"].pop("async_endpoint")
    assert async_endpoint_specs(parse_models_config(document), world.resources) == {}


def test_drop_notification_rate_outside_0_1_is_refused_over_http(world: AsyncWorld) -> None:
    body = json.dumps({"drop_notification_rate": 1.5}).encode()
    request = urllib.request.Request(f"{world.runtime.url}/_local/faults/{ASYNC_ENDPOINT}", data=body, method="PUT")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=5)
    assert raised.value.code == 400
    assert "drop_notification_rate 1.5 must lie in [0, 1]" in json.loads(raised.value.read())["error"]


def test_the_custom_attributes_reach_the_container_with_each_job_as_sagemaker_passes_them(
    world: AsyncWorld, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="serving.service"):
        world.submit(VALID, "job-attributes", CustomAttributes="correlation_id=req-async-1")
        world.idle()
    logged = [record.getMessage() for record in caplog.records if record.name == "serving.service"]
    assert any("'correlation_id=req-async-1'" in line for line in logged), logged
