"""The router handler on its async path, in-process with the sample events in events/router/, against moto's
server and the local SageMaker runtime's async endpoints: 202 + job, job status, who may read a job,
idempotency scope, the invoke deadline, malformed and expired jobs, and S3/DynamoDB faults answered 503 +
Retry-After.

The router app is built by its factory from this module's environment (another Lambda environment).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest

from functions.adapters import aws_clients
from functions.adapters.async_service import AwsAsyncJobs
from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.config.models import load_models_config
from functions.domain.job_records import QUEUED, SUBMITTING, SUCCEEDED, Job
from functions.handlers.router.app import RouterApp
from functions.handlers.router.caller import ANONYMOUS_CALLER
from local.api_gateway import LocalLambdaContext
from local.async_endpoints import async_endpoint_specs
from local.aws import (
    AsyncResources,
    LocalAsyncResources,
    LocalAws,
    aws_client,
    create_async_resources,
    local_environment,
)
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.sample_events import SAMPLE_JOB_ID
from local.stack import LOCAL_AWS_ENVIRONMENT, router_from_env, serverless_endpoints
from tests.helpers.aws_faults import FaultyClient, client_error, unreachable
from tests.helpers.events import HandlerAnswer, load_event

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class World:
    aws: LocalAws
    resources: AsyncResources
    router: RouterApp

    def call(self, event: dict[str, Any], *, timeout_ms: int = 28_000) -> HandlerAnswer:
        result = self.router(event, LocalLambdaContext(timeout_ms=timeout_ms))
        headers = {**(result.get("headers") or {})}
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        body = result.get("body")
        return HandlerAnswer(result["statusCode"], headers, json.loads(body) if body else None)

    def jobs(self) -> DynamoDBJobStore:
        return DynamoDBJobStore(self.resources.job_table, 3600, aws_client("dynamodb", self.aws.url))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    gpu = copy.deepcopy(document["models"][0])
    gpu["name"], gpu["route"] = "iris-gpu", {"sync": None, "async_endpoint": "iris-gpu"}
    document["models"].append(gpu)
    config_path = tmp_path_factory.mktemp("async-router") / "models.json"
    config_path.write_text(json.dumps(document))
    config = load_models_config(str(config_path))

    saved = dict(os.environ)
    aws = LocalAws().start()
    resources = create_async_resources(aws.url, LocalAsyncResources.unique("async-router"))
    runtime = LocalSageMakerRuntime(
        serverless_endpoints(config), async_endpoints=async_endpoint_specs(config, resources), aws_endpoint_url=aws.url
    ).start()
    os.environ.update({**LOCAL_AWS_ENVIRONMENT, **local_environment(resources, aws.url)})
    os.environ.update({"AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url, "MODELS_CONFIG_PATH": str(config_path)})
    yield World(aws, resources, router_from_env())
    runtime.stop()
    aws.stop()
    aws_clients.reset_clients()
    os.environ.clear()
    os.environ.update(saved)


ALICE_SESSION = "arn:aws:sts::123456789012:assumed-role/ranker/alice-session"
ALICE_REFRESHED = "arn:aws:sts::123456789012:assumed-role/ranker/alice-session-2"  # new credentials, same role
BOB_ROLE = "arn:aws:sts::123456789012:assumed-role/scorer/alice-session"  # another role, the same session name


def respond_async(
    *, key: str | None = "order-4711", model: str = "iris", user_arn: str | None = None
) -> dict[str, Any]:
    """The committed sample, varied: its Idempotency-Key, model, or authenticated caller (its IAM principal)."""
    event = load_event("apigw_infer_respond_async")
    if key is None:
        event["headers"].pop("Idempotency-Key")
        event["multiValueHeaders"].pop("Idempotency-Key")
    else:
        event["headers"]["Idempotency-Key"] = key
        event["multiValueHeaders"]["Idempotency-Key"] = [key]
    event["path"] = f"/v2/models/{model}/infer"
    event["pathParameters"] = {"model": model}
    event["requestContext"]["identity"]["userArn"] = user_arn
    return event


def job_status(job_id: str = SAMPLE_JOB_ID, *, user_arn: str | None = None) -> dict[str, Any]:
    event = load_event("apigw_job_status")
    event["path"] = f"/v2/jobs/{job_id}"
    event["pathParameters"] = {"job_id": job_id}
    event["requestContext"]["identity"]["userArn"] = user_arn
    return event


def test_respond_async_sample_answers_202_with_the_jobs_location(world: World) -> None:
    answer = world.call(load_event("apigw_infer_respond_async"))
    assert answer.status == 202
    assert answer.body["status"] == "queued"
    assert answer.headers["Location"] == f"/v2/jobs/{answer.body['id']}"
    assert answer.headers["Preference-Applied"] == "respond-async"
    job = world.jobs().get(answer.body["id"])
    assert job is not None
    assert (job.status, job.model, job.endpoint) == (QUEUED, "iris", "iris-async")
    assert job.deadline > job.created_at + 3600  # queued: the full deadline, no longer the submit's short one


def test_job_status_sample_for_an_unknown_job_is_404_then_200_once_it_exists(world: World) -> None:
    missing = world.call(load_event("apigw_job_status"))
    assert missing.status == 404
    assert missing.body == {"error": f"job {SAMPLE_JOB_ID!r} does not exist"}
    accepted = world.call(respond_async(key=None))
    found = world.call(job_status(accepted.body["id"]))
    assert found.status == 200
    assert found.body["id"] == accepted.body["id"]
    assert found.body["status"] in ("queued", "succeeded")


@pytest.mark.parametrize("job_id", ["not-a-job", "F" * 32, "0" * 31, "0" * 2048])
def test_job_status_of_a_malformed_id_is_400(world: World, job_id: str) -> None:
    answer = world.call(job_status(job_id))
    assert answer.status == 400
    assert "is not a job id: job ids are 32 lowercase hex characters" in answer.body["error"]


def test_job_status_of_a_job_id_with_a_trailing_newline_is_400_not_a_lookup(world: World) -> None:
    # API Gateway decodes %0A in the path: the id must match in full, not up to a newline ($ under re.match).
    accepted = world.call(respond_async(key=None))
    answer = world.call(job_status(accepted.body["id"] + "\n"))
    assert answer.status == 400
    assert "is not a job id: job ids are 32 lowercase hex characters" in answer.body["error"]


def test_job_status_of_a_succeeded_job_whose_result_expired_is_410(world: World) -> None:
    job_id = "e" * 32
    output = f"s3://{world.resources.bucket}/output/iris-async/expired.out"  # the lifecycle rule deleted it
    bucket = world.resources.bucket
    # The sample events name no caller: the anonymous one reads the job.
    world.jobs().create(
        Job(job_id, "iris", "iris-async", QUEUED, 1_000, 2_000, f"s3://{bucket}/x", owner=ANONYMOUS_CALLER)
    )
    world.jobs().settle(job_id, SUCCEEDED, output_location=output, error=None)
    answer = world.call(job_status(job_id))
    assert answer.status == 410
    assert answer.body["error"].startswith(f"job {job_id!r} succeeded, but its result is no longer stored")


def test_same_idempotency_key_and_body_for_another_model_is_another_job(world: World) -> None:
    iris = world.call(respond_async(key="order-models"))
    gpu = world.call(respond_async(key="order-models", model="iris-gpu"))
    again = world.call(respond_async(key="order-models", model="iris-gpu"))
    assert iris.status == gpu.status == again.status == 202
    assert iris.body["id"] != gpu.body["id"]
    assert gpu.body["id"] == again.body["id"]
    job = world.jobs().get(gpu.body["id"])
    assert job is not None
    assert job.model == "iris-gpu"


def test_same_idempotency_key_from_another_caller_is_another_job(world: World) -> None:
    alice = world.call(respond_async(key="order-callers", user_arn="arn:aws:iam::123456789012:user/alice"))
    bob = world.call(respond_async(key="order-callers", user_arn="arn:aws:iam::123456789012:user/bob"))
    alice_again = world.call(respond_async(key="order-callers", user_arn="arn:aws:iam::123456789012:user/alice"))
    assert alice.body["id"] != bob.body["id"]
    assert alice_again.body["id"] == alice.body["id"]


def test_a_job_is_read_by_its_submitter_and_is_unknown_to_anyone_else(world: World) -> None:
    submitted = world.call(respond_async(key=None, user_arn=ALICE_SESSION))
    assert submitted.status == 202
    job_id = submitted.body["id"]
    job = world.jobs().get(job_id)
    assert job is not None
    assert job.owner == "userArn:arn:aws:iam::123456789012:role/ranker"  # the role, not the session
    assert world.call(job_status(job_id, user_arn=ALICE_SESSION)).status == 200
    assert world.call(job_status(job_id, user_arn=ALICE_REFRESHED)).status == 200  # credentials refreshed
    unknown_id = "0123456789abcdef" * 2
    unknown = world.call(job_status(unknown_id, user_arn=BOB_ROLE))
    for other in (job_status(job_id, user_arn=BOB_ROLE), job_status(job_id)):  # another role; no identity
        answer = world.call(other)
        assert (answer.status, answer.headers) == (unknown.status, unknown.headers)
        assert answer.body == {"error": unknown.body["error"].replace(unknown_id, job_id)}
        assert answer.body == {"error": f"job {job_id!r} does not exist"}


def test_a_job_recorded_before_owners_were_recorded_is_no_callers(world: World) -> None:
    job_id = "d" * 32
    world.jobs().create(Job(job_id, "iris", "iris-async", QUEUED, 1_000, 2_000, f"s3://{world.resources.bucket}/x"))
    for user_arn in (None, ALICE_SESSION):
        answer = world.call(job_status(job_id, user_arn=user_arn))
        assert (answer.status, answer.body) == (404, {"error": f"job {job_id!r} does not exist"})


def test_same_idempotency_key_from_two_sessions_of_one_role_is_one_job(world: World) -> None:
    first = world.call(respond_async(key="order-sessions", user_arn=ALICE_SESSION))
    refreshed = world.call(respond_async(key="order-sessions", user_arn=ALICE_REFRESHED))
    other_role = world.call(respond_async(key="order-sessions", user_arn=BOB_ROLE))
    assert first.status == refreshed.status == other_role.status == 202
    assert refreshed.body["id"] == first.body["id"]
    assert other_role.body["id"] != first.body["id"]
    assert world.call(job_status(other_role.body["id"], user_arn=BOB_ROLE)).status == 200
    assert world.call(job_status(other_role.body["id"], user_arn=ALICE_SESSION)).status == 404


def test_async_invoke_timeout_is_the_invoke_budget_not_the_lambdas_remaining_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = world.router.clients.sagemaker
    seen: list[int] = []
    real = backend.invoke_async

    def recording(*args: Any, timeout_ms: int, **kwargs: Any) -> Any:
        seen.append(timeout_ms)
        return real(*args, timeout_ms=timeout_ms, **kwargs)

    monkeypatch.setattr(backend, "invoke_async", recording)
    assert world.call(respond_async(key=None), timeout_ms=28_000).status == 202
    assert seen == [world.router.settings.invoke_budget_ms]  # 20 000, not 28 000 - the reserve
    assert world.call(respond_async(key=None), timeout_ms=5_000).status == 202
    assert 4_000 < seen[1] <= 5_000 - world.router.settings.response_reserve_ms


def faulty_clients(monkeypatch: pytest.MonkeyPatch, service: str, client: Any) -> None:
    """The adapters get their clients from the project's factory: hand out ``client`` for ``service``."""
    real = aws_clients.client
    monkeypatch.setattr(aws_clients, "client", lambda name: client if name == service else real(name))


def test_job_table_throttled_answers_503_with_retry_after_and_leaves_no_input(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = aws_client("s3", world.aws.url)
    before = s3.list_objects_v2(Bucket=world.resources.bucket, Prefix="input/").get("KeyCount", 0)
    throttled = client_error("ProvisionedThroughputExceededException", 400, "PutItem")
    faulty_clients(monkeypatch, "dynamodb", FaultyClient(aws_client("dynamodb", world.aws.url), put_item=throttled))
    answer = world.call(respond_async(key=None))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.body == {
        "error": "the job table (DynamoDB) is unavailable (ProvisionedThroughputExceededException); retry later"
    }
    assert s3.list_objects_v2(Bucket=world.resources.bucket, Prefix="input/").get("KeyCount", 0) == before


def test_job_table_unreachable_on_job_status_answers_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    faulty_clients(monkeypatch, "dynamodb", unreachable("dynamodb"))
    answer = world.call(job_status("0" * 32))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"
    assert "EndpointConnectionError" in answer.body["error"]


def test_object_store_unreachable_on_submit_answers_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    faulty_clients(monkeypatch, "s3", unreachable("s3"))
    answer = world.call(respond_async(key=None))
    assert answer.status == 503
    assert answer.body["error"].startswith("the async object store (S3) is unavailable")


def test_idempotency_table_throttled_answers_503(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    submitter = cast(AwsAsyncJobs, world.router.async_jobs()).idempotency
    assert submitter is not None
    real = submitter.persistence.client
    monkeypatch.setattr(
        submitter.persistence, "client", FaultyClient(real, put_item=client_error("ThrottlingException", 400, "Put"))
    )
    answer = world.call(respond_async(key="order-throttled"))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "1"


def test_job_table_failing_after_the_endpoint_took_the_job_still_answers_202(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dynamodb = aws_client("dynamodb", world.aws.url)
    failing = FaultyClient(dynamodb, update_item=client_error("InternalServerError", 500, "UpdateItem"))
    faulty_clients(monkeypatch, "dynamodb", failing)
    answer = world.call(respond_async(key=None))
    assert answer.status == 202
    job_id = answer.body["id"]
    job = world.jobs().get(job_id)
    assert job is not None
    assert job.status == SUBMITTING  # the table could not be told; the notification (or the sweeper) will settle it
    marker = aws_client("s3", world.aws.url).get_object(
        Bucket=world.resources.bucket, Key=f"input/iris-async/{job_id}.accepted.json"
    )
    assert json.loads(marker["Body"].read())["output_location"].startswith(f"s3://{world.resources.bucket}/output/")
    assert '"JobsQueuedUnrecorded":[1.0]' in capsys.readouterr().out  # the metric on-call's dashboard counts
    [logged] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert logged.getMessage().endswith("answered 202 anyway")


def test_an_async_submit_is_counted_on_the_async_route_and_its_job_keeps_the_request_id(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    event = respond_async(key=None)
    capsys.readouterr()
    answer = world.call(event)
    assert answer.status == 202
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    [document] = [document for document in documents if "Requests" in document]
    assert (document["model"], document["route"], document["status"]) == ("iris", "async", 202)
    assert (document["ServerErrors"], document["ClientErrors"], document["DegradedRequests"]) == (0, 0, 0)
    assert 0 < document["EndpointLatency"] <= document["Latency"]  # invoke_endpoint_async alone, not the S3 put
    job = world.jobs().get(answer.body["id"])
    assert job is not None
    assert job.correlation_id == event["requestContext"]["requestId"] == document["correlation_id"]
