"""The result function in-process against moto: a success notification whose result breaks iris's output
contract fails the job with the 502's message (what ``GET /v2/jobs/{id}`` shows), counts ``JobsFailed`` and
``OutputContractViolations`` by service, model and check, and reports no batch item failure; a result that
keeps the contract still succeeds. The sweeper, finding such a result for a job no notification settled, fails
it and counts it the same way under its own service."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from functions.config.telemetry import RESULTS_SERVICE, SWEEPER_SERVICE
from functions.handlers.results.app import ResultsHandler
from functions.handlers.results.app import create_handler as create_results_handler
from functions.handlers.sweeper.app import create_handler as create_sweeper_handler
from local.api_gateway import LocalLambdaContext
from local.aws import AsyncResources, LocalAsyncResources, LocalAws, create_async_resources, local_environment
from local.sample_events import SAMPLE_JOB_ID
from local.stack import LOCAL_AWS_ENVIRONMENT, job_service_from_env
from tests.functional.test_async_handlers import notification, put, queued_job, sample

GOOD = {"outputs": [
    {"name": "label", "datatype": "INT64", "shape": [1], "data": [1]},
    {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [0.1, 0.8, 0.1]},
]}  # fmt: skip


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[LocalAws, AsyncResources]]:
    saved = dict(os.environ)
    aws = LocalAws().start()
    resources = create_async_resources(aws.url, LocalAsyncResources.unique("contract"))
    os.environ.update({**LOCAL_AWS_ENVIRONMENT, **local_environment(resources, aws.url)})
    yield aws, resources
    aws.stop()
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="module")
def results(world: tuple[LocalAws, AsyncResources]) -> ResultsHandler:
    return create_results_handler(job_service_from_env())


def emf_documents(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


def settle(world: tuple[LocalAws, AsyncResources], results: ResultsHandler, answer: bytes) -> Any:
    store = queued_job(world)
    event = sample("results/sqs_inference_succeeded", world[1].bucket)
    put(world, notification(event)["responseParameters"]["outputLocation"], answer)
    assert results(event, LocalLambdaContext()) == {"batchItemFailures": []}
    return store.get(SAMPLE_JOB_ID)


def test_a_result_outside_the_contract_fails_the_job_and_is_counted(
    world: tuple[LocalAws, AsyncResources],
    results: ResultsHandler,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = json.loads(json.dumps(GOOD))
    broken["outputs"][1]["data"] = [0.1, 1.7, 0.1]
    job = settle(world, results, json.dumps(broken).encode())
    assert job.status == "failed"
    assert job.error == (
        "model 'iris' answered outside its contract: output 'probabilities' fails the range check: "
        "element [0, 1] is 1.7, above the maximum 1"
    )
    out = capsys.readouterr().out
    documents = emf_documents(out)
    violations = [doc for doc in documents if "OutputContractViolations" in doc]
    assert len(violations) == 1
    assert {key: violations[0][key] for key in ("service", "model", "check")} == {
        "service": RESULTS_SERVICE, "model": "iris", "check": "range",
    }  # fmt: skip
    assert violations[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model", "check"]]
    assert any(doc.get("JobsFailed") == [1.0] for doc in documents)
    assert not any("JobsSucceeded" in doc for doc in documents)
    logged = [record for record in caplog.records if record.getMessage().startswith("job failed: its result broke")]
    assert [(vars(record)["model"], vars(record)["check"], vars(record)["job_id"]) for record in logged] == [
        ("iris", "range", SAMPLE_JOB_ID)
    ]


def test_a_result_inside_the_contract_succeeds(
    world: tuple[LocalAws, AsyncResources], results: ResultsHandler, capsys: pytest.CaptureFixture[str]
) -> None:
    job = settle(world, results, json.dumps(GOOD).encode())
    assert (job.status, job.error) == ("succeeded", None)
    assert "OutputContractViolations" not in capsys.readouterr().out


def test_the_sweeper_fails_an_overdue_job_whose_result_breaks_the_contract_and_counts_it(
    world: tuple[LocalAws, AsyncResources], capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    job_id = "d" * 32
    store = queued_job(world, job_id, locations_of={"responseParameters": {}})  # its deadline long past
    job = store.get(job_id)
    assert job is not None
    assert job.output_location is not None
    broken = json.loads(json.dumps(GOOD))
    broken["outputs"][1]["data"] = [0.1, 0.2, 0.1]
    put(world, job.output_location, json.dumps(broken).encode())
    sweeper = create_sweeper_handler(job_service_from_env())
    counts = sweeper(sample("sweeper/scheduled", "unused"), LocalLambdaContext())
    assert counts["failed"] >= 1
    swept = store.get(job_id)
    assert swept is not None
    assert swept.status == "failed"
    assert swept.error is not None
    assert swept.error.startswith("model 'iris' answered outside its contract: output 'probabilities' fails the ")
    assert "sum_to_one check" in swept.error
    violations = [doc for doc in emf_documents(capsys.readouterr().out) if "OutputContractViolations" in doc]
    assert [{key: doc[key] for key in ("service", "model", "check")} for doc in violations] == [
        {"service": SWEEPER_SERVICE, "model": "iris", "check": "sum_to_one"}
    ]
    assert violations[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "model", "check"]]
    logged = [record for record in caplog.records if record.getMessage().startswith("job failed: its result broke")]
    assert [(vars(record)["model"], vars(record)["check"]) for record in logged] == [("iris", "sum_to_one")]
