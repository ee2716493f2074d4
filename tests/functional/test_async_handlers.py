"""The result and sweeper functions in-process with the sample events in events/, against moto's server.

A job is set up as the router leaves it: queued with the output and failure locations ``invoke_endpoint_async``
answered, which a notification must name to settle it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.config.telemetry import RESULTS_SERVICE
from functions.domain.job_records import QUEUED, SUBMITTING, SUCCEEDED, Job
from functions.handlers.results.app import ResultsHandler
from functions.handlers.results.app import create_handler as create_results_handler
from functions.handlers.sweeper.app import SweeperHandler
from functions.handlers.sweeper.app import create_handler as create_sweeper_handler
from local.api_gateway import LocalLambdaContext
from local.aws import (
    AsyncResources,
    LocalAsyncResources,
    LocalAws,
    aws_client,
    create_async_resources,
    local_environment,
)
from local.sample_events import PIPELINE_SAMPLES, SAMPLE_JOB_ID
from local.stack import LOCAL_AWS_ENVIRONMENT, job_service_from_env
from tests.helpers.events import EVENTS_DIR

SAMPLE_BUCKET = "inferencerouter-dev-asyncstoragebucket"


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LocalAws, AsyncResources]]:
    saved = dict(os.environ)
    aws = LocalAws().start()
    resources = create_async_resources(aws.url, LocalAsyncResources.unique("handlers"))
    os.environ.update({**LOCAL_AWS_ENVIRONMENT, **local_environment(resources, aws.url)})
    yield aws, resources
    aws.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def results(world: tuple[LocalAws, AsyncResources]) -> ResultsHandler:
    return create_results_handler(job_service_from_env())


@pytest.fixture(scope="module")
def sweeper(world: tuple[LocalAws, AsyncResources]) -> SweeperHandler:
    return create_sweeper_handler(job_service_from_env())


def sample(name: str, bucket: str) -> dict[str, Any]:
    """A committed sample event, its S3 locations moved into this test's bucket."""
    text = (EVENTS_DIR / f"{name}.json").read_text()
    event: dict[str, Any] = json.loads(text.replace(SAMPLE_BUCKET, bucket))
    return event


def notification(event: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(event["Records"][0]["body"])
    return document


def queued_job(
    world: tuple[LocalAws, AsyncResources],
    job_id: str = SAMPLE_JOB_ID,
    *,
    locations_of: dict[str, Any] | None = None,
) -> DynamoDBJobStore:
    """A queued job with the locations the notification in ``locations_of`` names (the sample's by default)."""
    aws, resources = world
    store = DynamoDBJobStore(resources.job_table, 3600, aws_client("dynamodb", aws.url))
    store.delete(job_id)
    input_location = f"s3://{resources.bucket}/input/dev-iris-async/{job_id}.json"
    store.create(Job(job_id, "iris", "dev-iris-async", SUBMITTING, 1_000, 2_000, input_location))
    response = (locations_of or notification(sample("results/sqs_inference_succeeded", resources.bucket)))[
        "responseParameters"
    ]
    output = response.get("outputLocation") or f"s3://{resources.bucket}/output/dev-iris-async/{job_id}.out"
    failure = response.get("failureLocation") or f"s3://{resources.bucket}/failure/dev-iris-async/{job_id}-error.out"
    assert store.mark_queued(job_id, output, failure, deadline=2_000)
    return store


def put(world: tuple[LocalAws, AsyncResources], uri: str, body: bytes) -> None:
    aws, resources = world
    aws_client("s3", aws.url).put_object(Bucket=resources.bucket, Key=uri.split("/", 3)[3], Body=body)


@pytest.mark.parametrize("name", sorted(PIPELINE_SAMPLES))
def test_committed_pipeline_events_are_current(name: str) -> None:
    committed = json.loads((EVENTS_DIR / f"{name}.json").read_text())
    assert committed == PIPELINE_SAMPLES[name], "events/ is stale: run `python -m local.sample_events`"


def test_success_notification_settles_the_job_and_a_duplicate_is_harmless(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    store = queued_job(world)
    event = sample("results/sqs_inference_succeeded", world[1].bucket)
    output = notification(event)["responseParameters"]["outputLocation"]
    put(world, output, b'{"model_name": "iris", "outputs": []}')
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get(SAMPLE_JOB_ID)
    assert job is not None
    assert (job.status, job.output_location) == ("succeeded", output)
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    assert '"DuplicateNotifications":[1.0]' in capsys.readouterr().out.replace(" ", "")


def submitting_job(world: tuple[LocalAws, AsyncResources], job_id: str = SAMPLE_JOB_ID) -> DynamoDBJobStore:
    """A job the endpoint took while the router's mark-queued write failed: the record still says submitting."""
    aws, resources = world
    store = DynamoDBJobStore(resources.job_table, 3600, aws_client("dynamodb", aws.url))
    store.delete(job_id)
    input_location = f"s3://{resources.bucket}/input/dev-iris-async/{job_id}.json"
    store.create(Job(job_id, "iris", "dev-iris-async", SUBMITTING, 1_000, 2_000, input_location))
    return store


def test_success_notification_settles_a_job_the_router_could_not_mark_queued(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    store = submitting_job(world)
    event = sample("results/sqs_inference_succeeded", world[1].bucket)
    output = notification(event)["responseParameters"]["outputLocation"]
    put(world, output, b'{"model_name": "iris", "outputs": []}')
    # What the router writes when the table cannot be told: the locations the endpoint answered.
    marker = {"output_location": output, "failure_location": None}
    put(
        world, f"s3://{world[1].bucket}/input/dev-iris-async/{SAMPLE_JOB_ID}.accepted.json", json.dumps(marker).encode()
    )
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get(SAMPLE_JOB_ID)
    assert job is not None
    assert (job.status, job.output_location) == ("succeeded", output)


def test_failure_notification_fails_the_job_with_the_failure_objects_reason(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    event = sample("results/sqs_inference_failed", world[1].bucket)
    store = queued_job(world, locations_of=notification(event))
    failure = b'{"error": "model said: feature 3 is negative"}'  # what the container answered
    put(world, notification(event)["responseParameters"]["failureLocation"], failure)
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get(SAMPLE_JOB_ID)
    assert job is not None
    assert (job.status, job.error) == ("failed", "model said: feature 3 is negative")


def test_failure_without_a_failure_object_keeps_the_notifications_reason(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    event = sample("results/sqs_inference_failed", world[1].bucket)
    body = notification(event)
    body["inferenceId"] = "a" * 32
    body["responseParameters"]["failureLocation"] += ".absent"
    event["Records"][0]["body"] = json.dumps(body)
    store = queued_job(world, "a" * 32, locations_of=body)
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get("a" * 32)
    assert job is not None
    assert job.error == body["failureReason"]


def forged(event: dict[str, Any], job_id: str, **changes: Any) -> dict[str, Any]:
    """``event`` re-addressed to ``job_id`` with its notification's fields changed: what anyone allowed to
    publish to the topics, or send to the queue, can write."""
    body = notification(event)
    body["inferenceId"] = job_id
    body["responseParameters"].update(changes.pop("responseParameters", {}))
    body.update(changes)
    forged_event = json.loads(json.dumps(event))
    forged_event["Records"][0]["body"] = json.dumps(body)
    return forged_event


def test_a_notification_giving_job_b_the_output_of_job_a_settles_nothing_and_the_real_one_still_does(
    world: tuple[LocalAws, AsyncResources],
    results: ResultsHandler,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = world[1].bucket
    job_a, job_b = "a1" * 16, "b2" * 16
    a_output, b_output = (f"s3://{bucket}/output/dev-iris-async/{name}.out" for name in ("a-uuid", "b-uuid"))
    store = queued_job(world, job_a, locations_of={"responseParameters": {"outputLocation": a_output}})
    queued_job(world, job_b, locations_of={"responseParameters": {"outputLocation": b_output}})
    put(world, a_output, b'{"model_name": "iris", "id": "A", "outputs": []}')
    succeeded = sample("results/sqs_inference_succeeded", bucket)

    assert results(forged(succeeded, job_b, responseParameters={"outputLocation": a_output}), LocalLambdaContext()) == {
        "batchItemFailures": []  # ignored, not retried: SQS drops it
    }
    job = store.get(job_b)
    assert job is not None
    assert (job.status, job.output_location, job.error) == (QUEUED, b_output, None)
    assert '"MismatchedNotifications":[1.0]' in capsys.readouterr().out.replace(" ", "")
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert warning.getMessage() == "notification ignored: its locations are not the ones recorded for the job"
    assert (warning.job_id, warning.output_location) == (job_b, a_output)  # type: ignore[attr-defined]

    put(world, b_output, b'{"model_name": "iris", "id": "B", "outputs": []}')
    assert results(forged(succeeded, job_b, responseParameters={"outputLocation": b_output}), LocalLambdaContext()) == {
        "batchItemFailures": []
    }
    job = store.get(job_b)
    assert job is not None
    assert (job.status, job.output_location) == (SUCCEEDED, b_output)
    assert '"JobsSucceeded":[1.0]' in capsys.readouterr().out.replace(" ", "")


def test_a_forged_failure_settles_nothing_and_its_text_is_logged_clipped(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler, caplog: pytest.LogCaptureFixture
) -> None:
    failed = sample("results/sqs_inference_failed", world[1].bucket)
    store = queued_job(world, locations_of=notification(failed))
    elsewhere = f"s3://{world[1].bucket}/failure/dev-iris-async/" + "x" * 100_000
    event = forged(failed, SAMPLE_JOB_ID, failureReason="you have been hacked " * 50_000,
                   responseParameters={"failureLocation": elsewhere})  # fmt: skip
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get(SAMPLE_JOB_ID)
    assert job is not None
    assert (job.status, job.error) == (QUEUED, None)
    [warning] = [r for r in caplog.records if r.levelname == "WARNING"]
    logged = (warning.failure_reason, warning.failure_location)  # type: ignore[attr-defined]
    assert all(len(value) < 250 for value in logged)
    assert logged[0].startswith("you have been hacked")
    assert logged[0].endswith(" (1050000 chars)")


def test_a_notification_for_a_job_still_submitting_without_a_marker_is_retried(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    # The endpoint answered before the router marked the job queued: its locations are not recorded yet.
    store = submitting_job(world, "d" * 32)
    event = forged(sample("results/sqs_inference_succeeded", world[1].bucket), "d" * 32)
    with pytest.raises(BatchProcessingError, match="whose submit has not recorded it yet"):
        results(event, LocalLambdaContext())  # every record failed: SQS delivers it again later
    job = store.get("d" * 32)
    assert job is not None
    assert job.status == SUBMITTING
    output = notification(event)["responseParameters"]["outputLocation"]
    assert store.mark_queued("d" * 32, output, None, deadline=2_000)  # the router's write lands
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    job = store.get("d" * 32)
    assert job is not None
    assert job.status == SUCCEEDED


def test_a_notification_for_an_unknown_job_is_reported_failed_for_the_dead_letter_queue(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    event = sample("results/sqs_inference_succeeded", world[1].bucket)
    body = notification(event)
    body["inferenceId"] = "f" * 32
    event["Records"][0]["body"] = json.dumps(body)
    # Every record failed: Powertools raises, Lambda reports the invocation failed, SQS keeps the message.
    with pytest.raises(BatchProcessingError, match="which the job table does not hold"):
        results(event, LocalLambdaContext())


def test_a_message_that_is_not_a_notification_is_reported_failed(results: ResultsHandler) -> None:
    event = sample("results/sqs_not_a_notification", "unused")
    with pytest.raises(BatchProcessingError, match="not a SageMaker InferenceResult notification"):
        results(event, LocalLambdaContext())


def test_one_bad_record_does_not_fail_its_batch(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    queued_job(world)
    good = sample("results/sqs_inference_succeeded", world[1].bucket)
    bad = sample("results/sqs_not_a_notification", "unused")
    bad["Records"][0]["messageId"] = "bad-one"
    event = {"Records": [bad["Records"][0], good["Records"][0]]}
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": [{"itemIdentifier": "bad-one"}]}


def test_sweeper_settles_overdue_jobs_and_reports_the_oldest_open_age(
    world: tuple[LocalAws, AsyncResources], sweeper: SweeperHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    store = queued_job(world, "b" * 32, locations_of={"responseParameters": {}})  # overdue, no output anywhere
    counts = sweeper(sample("sweeper/scheduled", "unused"), LocalLambdaContext())
    assert counts["timeout"] >= 1
    job = store.get("b" * 32)
    assert job is not None
    assert job.status == "failed"
    assert job.error is not None
    assert job.error.startswith("timeout")
    emitted = capsys.readouterr().out
    assert "OldestOpenJobAgeSeconds" in emitted
    assert "JobsSweptTimeout" in emitted


def test_sweeper_adopts_a_submitting_job_the_endpoint_accepted(
    world: tuple[LocalAws, AsyncResources], sweeper: SweeperHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = "c" * 32
    aws, resources = world
    store = DynamoDBJobStore(resources.job_table, 3600, aws_client("dynamodb", aws.url))
    created = int(time.time()) - 600  # ten minutes ago: its submit deadline passed, its full one is hours ahead
    input_location = f"s3://{resources.bucket}/input/dev-iris-async/{job_id}.json"
    store.create(Job(job_id, "iris", "dev-iris-async", SUBMITTING, created, created + 85, input_location))
    output = f"s3://{world[1].bucket}/output/dev-iris-async/{job_id}.out"
    marker = {"output_location": output, "failure_location": None}
    put(world, f"s3://{world[1].bucket}/input/dev-iris-async/{job_id}.accepted.json", json.dumps(marker).encode())
    counts = sweeper(sample("sweeper/scheduled", "unused"), LocalLambdaContext())
    assert counts["adopted"] >= 1
    job = store.get(job_id)
    assert job is not None
    assert (job.status, job.output_location) == ("queued", output)
    assert '"JobsSweptAdopted":[' in capsys.readouterr().out.replace(" ", "")


def test_the_result_handler_logs_under_the_correlation_id_of_the_request_that_submitted_the_job(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler
) -> None:
    aws, resources = world
    event = sample("results/sqs_inference_succeeded", resources.bucket)
    response = notification(event)["responseParameters"]
    store = DynamoDBJobStore(resources.job_table, 3600, aws_client("dynamodb", aws.url))
    store.delete(SAMPLE_JOB_ID)
    input_location = f"s3://{resources.bucket}/input/dev-iris-async/{SAMPLE_JOB_ID}.json"
    store.create(Job(SAMPLE_JOB_ID, "iris", "dev-iris-async", SUBMITTING, 1_000, 2_000, input_location,
                     correlation_id="c6af9ac6-7b61-11e6-9a41-93e8deadbeef"))  # fmt: skip
    assert store.mark_queued(SAMPLE_JOB_ID, response["outputLocation"], None, deadline=2_000)
    put(world, response["outputLocation"], b'{"model_name": "iris", "outputs": []}')
    unknown = forged(event, "e" * 32)  # a second record, for a job the table does not hold: no id to log under
    two_records = {"Records": [event["Records"][0], unknown["Records"][0]]}
    powertools = logging.getLogger(RESULTS_SERVICE)
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(powertools.handlers[0].formatter)
    powertools.addHandler(capture)
    try:
        failures = results(two_records, LocalLambdaContext())
    finally:
        powertools.removeHandler(capture)
    assert len(failures["batchItemFailures"]) == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    [settled] = [line for line in lines if line["message"] == "job settled"]
    assert settled["correlation_id"] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    assert all(line.get("correlation_id") is None for line in lines if line is not settled)
