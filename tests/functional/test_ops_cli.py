"""``python -m ops`` against moto's server and the local SageMaker runtime, reached through a local state file
as ``make local`` writes it: redrive (--dry-run, --limit, progress, counts) and resubmit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.adapters import aws_clients
from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.config.models import load_models_config
from functions.domain.job_records import FAILED, QUEUED, Job
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
from local.stack import LOCAL_AWS_ENVIRONMENT
from ops import targets
from ops.__main__ import main
from ops.redrive import queue_depth

ROOT = Path(__file__).resolve().parents[2]
ROW = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@dataclass(frozen=True)
class World:
    aws: LocalAws
    resources: AsyncResources
    state_file: Path

    @property
    def sqs(self) -> Any:
        return aws_client("sqs", self.aws.url)

    def jobs(self) -> DynamoDBJobStore:
        return DynamoDBJobStore(self.resources.job_table, 3600, aws_client("dynamodb", self.aws.url))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    aws = LocalAws().start()
    resources = create_async_resources(aws.url, LocalAsyncResources.unique("ops"))
    runtime = LocalSageMakerRuntime(
        {}, async_endpoints=async_endpoint_specs(load_models_config(), resources), aws_endpoint_url=aws.url
    ).start()
    environment = {
        **LOCAL_AWS_ENVIRONMENT,
        **local_environment(resources, aws.url),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": runtime.url,
    }
    state_file = tmp_path_factory.mktemp("local") / "state.json"
    state_file.write_text(json.dumps({"pid": 4242, "environment": environment}))
    yield World(aws, resources, state_file)
    runtime.stop()
    aws.stop()


@pytest.fixture(autouse=True)
def own_environment(world: World) -> Iterator[None]:
    """The CLI points this process's environment (and the cached clients) at its target: undo it after."""
    saved = dict(os.environ)
    aws_clients.reset_clients()
    yield
    os.environ.clear()
    os.environ.update(saved)
    aws_clients.reset_clients()
    for url in (world.resources.dead_letter_queue_url, world.resources.result_queue_url):
        while messages := world.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                world.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def dead_letters(world: World, count: int) -> None:
    for index in range(count):
        world.sqs.send_message(QueueUrl=world.resources.dead_letter_queue_url, MessageBody=f'{{"n": {index}}}')


def test_cli_redrive_dry_run_counts_and_moves_nothing(world: World) -> None:
    dead_letters(world, 3)
    result = subprocess.run(
        [sys.executable, "-m", "ops", "redrive", "--dry-run", "--local-state", str(world.state_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "local stack (pid 4242): 3 message(s) in the dead-letter queue would move"
    assert queue_depth(world.sqs, world.resources.dead_letter_queue_url) == 3
    assert queue_depth(world.sqs, world.resources.result_queue_url) == 0


def test_cli_redrive_limit_moves_that_many_and_shows_progress(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    dead_letters(world, 5)
    assert main(["redrive", "--limit", "2", "--local-state", str(world.state_file)]) == 0
    out, err = capsys.readouterr()
    assert "redrive: 2/2 moved" in err
    assert "moved 2 message(s) to the result queue; 0 failed to send; about 3 left in the dead-letter queue" in out
    assert queue_depth(world.sqs, world.resources.dead_letter_queue_url) == 3
    assert queue_depth(world.sqs, world.resources.result_queue_url) == 2


def test_cli_redrive_moves_everything_and_empties_the_dlq(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    dead_letters(world, 12)
    assert main(["redrive", "--local-state", str(world.state_file)]) == 0
    out, err = capsys.readouterr()
    assert err.splitlines()[-1] == "redrive: 12/12 moved"
    assert "moved 12 message(s)" in out
    assert queue_depth(world.sqs, world.resources.dead_letter_queue_url) == 0


def test_cli_without_a_running_local_stack_says_how_to_start_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["redrive", "--dry-run", "--local-state", str(tmp_path / "absent.json")]) == 2
    assert "no local stack is running" in capsys.readouterr().err


def test_cli_redrive_limit_below_one_is_refused(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["redrive", "--limit", "0", "--local-state", str(world.state_file)])
    assert exited.value.code == 2
    assert "--limit must be at least 1" in capsys.readouterr().err


def failed_job(world: World, job_id: str, status: str = FAILED) -> None:
    input_key = f"input/iris-async/{job_id}.json"
    aws_client("s3", world.aws.url).put_object(Bucket=world.resources.bucket, Key=input_key, Body=json.dumps(ROW))
    jobs = world.jobs()
    jobs.create(Job(job_id, "iris", "iris-async", QUEUED, 1_000, 2_000, f"s3://{world.resources.bucket}/{input_key}"))
    if status == FAILED:
        jobs.settle(job_id, FAILED, output_location=None, error="injected model failure")


def test_cli_resubmit_submits_a_failed_jobs_input_as_a_new_job(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    failed_job(world, "a" * 32)
    assert main(["resubmit", "a" * 32, "--local-state", str(world.state_file)]) == 0
    found = re.search(r"re-submitted as ([0-9a-f]{32}) \(GET /v2/jobs/\1\)", capsys.readouterr().out)
    assert found is not None
    again = world.jobs().get(found.group(1))
    assert again is not None
    assert (again.model, again.status) == ("iris", QUEUED)  # nothing consumes the result queue here
    old = world.jobs().get("a" * 32)
    assert old is not None
    assert (old.status, old.error) == (FAILED, "injected model failure")  # the failure stays on record


def test_cli_resubmit_refuses_a_job_that_did_not_fail(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    failed_job(world, "b" * 32, status=QUEUED)
    assert main(["resubmit", "b" * 32, "--local-state", str(world.state_file)]) == 1
    assert "is queued, not failed (use --force to submit it again)" in capsys.readouterr().err


def test_cli_resubmit_of_an_unknown_job_says_so(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["resubmit", "c" * 32, "--local-state", str(world.state_file)]) == 1
    assert f"job {'c' * 32!r} does not exist" in capsys.readouterr().err


def test_a_model_stack_named_as_the_target_points_at_the_platform_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    client = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "InferenceRouter-prod-model-iris",
                    "CreationTime": "2026-12-01T00:00:00Z",
                    "StackStatus": "CREATE_COMPLETE",
                    "Outputs": [{"OutputKey": "EndpointProdIris", "OutputValue": "prod-iris"}],
                }
            ]
        },
        {"StackName": "InferenceRouter-prod-model-iris"},
    )
    monkeypatch.setattr(targets.boto3, "client", lambda service: client)
    with stubber, pytest.raises(targets.TargetError) as raised:
        targets.stack_target("InferenceRouter-prod-model-iris")
    assert str(raised.value) == (
        "stack 'InferenceRouter-prod-model-iris' lacks outputs ResultQueueUrl, DeadLetterQueueUrl, AsyncBucket, "
        "JobTable: name the stage's platform stack (InferenceRouter-<stage>), not a model stack"
    )
