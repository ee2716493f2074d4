"""Output checks on the async route (functions/domain/result_contract.py through AsyncJobService): a result
that breaks iris's contract settles its job as failed with the 502's message and tells ``violated`` the model
and check, on the notification path and the sweeper's; a good result, a model without a contract, a missing or
oversize result and a duplicate notification are left as they were."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from functions.config.models import load_models_config, parse_models_config
from functions.domain.async_jobs import AsyncJobService, AsyncPolicy
from functions.domain.job_records import FAILED, SUCCEEDED, AsyncOutcome, Job, Settlement
from functions.domain.result_contract import ResultContracts
from tests.unit.test_async_jobs import Clock, MemoryJobs, MemoryObjects, RecordingEndpoint, RecordingEvents, World

CONFIG = load_models_config()
GOOD = {"outputs": [
    {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]},
    {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [0.9, 0.05, 0.05]},
]}  # fmt: skip


@pytest.fixture
def world() -> World:
    """The async job service on the in-memory fakes of tests/unit/test_async_jobs.py."""
    clock = Clock()
    objects, jobs, endpoint, events = MemoryObjects(clock), MemoryJobs(clock), RecordingEndpoint(), RecordingEvents()
    service = AsyncJobService(objects, endpoint, jobs, AsyncPolicy(), endpoint_name_prefix="dev-", events=events)
    return World(clock, objects, jobs, endpoint, events, service)


def answer(probabilities: list[float], label: int = 0) -> bytes:
    document = json.loads(json.dumps(GOOD))
    document["outputs"][0]["data"] = [label]
    document["outputs"][1]["data"] = probabilities
    return json.dumps(document).encode()


def checked(world: World, config: object = CONFIG, max_bytes: int = 8 * 1024 * 1024) -> World:
    world.service = replace(world.service, contracts=ResultContracts(config, max_bytes))  # type: ignore[arg-type]
    return world


def finished(world: World, body: bytes) -> tuple[Job, AsyncOutcome]:
    job = world.submit()
    assert job.output_location is not None
    world.objects.objects[job.output_location] = body
    return job, AsyncOutcome(job.job_id, True, job.output_location, None, None)


@pytest.mark.parametrize(
    ("body", "check", "detail"),
    [
        (answer([1.7, 0.0, 0.0]), "range", "output 'probabilities' fails the range check: element [0, 0] is 1.7"),
        (answer([0.5, 0.2, 0.1]), "sum_to_one", "[0, :] sums to 0.8, not 1 within 0.001"),
        (answer([0.9, 0.05, 0.05], label=3), "range", "output 'label' fails the range check: element [0] is 3"),
        (answer([0.9, 0.05, 0.05]).replace(b"0.9", b"NaN"), "finite", "element [0, 0] is nan"),
        (b"<html>oops</html>", "malformed", "the answer is not JSON"),
    ],
)
def test_a_result_outside_the_contract_fails_its_job(world: World, body: bytes, check: str, detail: str) -> None:
    job, outcome = finished(checked(world), body)
    seen: list[tuple[str, str]] = []
    assert world.service.settle(outcome, violated=lambda *told: seen.append(told)) is Settlement.REFUSED
    settled = world.jobs.jobs[job.job_id]
    assert settled.status == FAILED
    assert settled.error is not None
    assert settled.error.startswith("model 'iris' answered outside its contract:")
    assert detail in settled.error
    assert seen == [("iris", check)]
    view = world.service.view(job.job_id, caller=job.owner).document()
    assert view["status"] == "failed"
    assert "result" not in view
    assert view["error"] == settled.error
    # SQS delivers it again: the job has settled, nothing is counted twice.
    assert world.service.settle(outcome, violated=lambda *told: seen.append(told)) is Settlement.DUPLICATE
    assert len(seen) == 1


def test_a_result_inside_the_contract_succeeds(world: World) -> None:
    job, outcome = finished(checked(world), answer([0.9, 0.05, 0.05]))
    seen: list[tuple[str, str]] = []
    assert world.service.settle(outcome, violated=lambda *told: seen.append(told)) is Settlement.SETTLED
    assert world.jobs.jobs[job.job_id].status == SUCCEEDED
    assert seen == []


def test_without_contracts_or_without_a_declared_contract_nothing_is_checked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, outcome = finished(world, answer([1.7, 0.0, 0.0]))  # the service checks nothing
    assert world.service.settle(outcome) is Settlement.SETTLED
    raw = json.loads(Path(CONFIG.source).read_text())
    for output in raw["models"][0]["outputs"]:
        output.pop("contract", None)
    _, outcome = finished(checked(world, parse_models_config(raw)), answer([1.7, 0.0, 0.0]))
    monkeypatch.setattr(world.objects, "read", lambda uri: pytest.fail(f"read {uri}: iris declares no contract here"))
    assert world.service.settle(outcome) is Settlement.SETTLED


def test_an_oversize_result_is_not_checked(world: World, caplog: pytest.LogCaptureFixture) -> None:
    _, outcome = finished(checked(world, max_bytes=64), answer([1.7, 0.0, 0.0]))
    assert world.service.settle(outcome) is Settlement.SETTLED
    assert "too large to check its contract" in caplog.text


def test_a_result_that_is_gone_is_not_checked(world: World) -> None:
    job, outcome = finished(checked(world), b"")
    assert job.output_location is not None
    del world.objects.objects[job.output_location]
    assert world.service.settle(outcome) is Settlement.SETTLED  # the view reports it expired


def test_the_sweeper_fails_a_job_whose_result_breaks_the_contract(world: World) -> None:
    job, _ = finished(checked(world), answer([0.5, 0.2, 0.1]))
    violations: list[tuple[str, str]] = []
    counts = world.service.sweep(
        now=world.jobs.jobs[job.job_id].deadline + 1, violated=lambda *breach: violations.append(breach)
    )
    assert (counts["failed"], counts["succeeded"]) == (1, 0)
    assert violations == [("iris", "sum_to_one")]
    error = world.jobs.jobs[job.job_id].error
    assert error is not None
    assert "fails the sum_to_one check" in error
