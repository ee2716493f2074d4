"""The async use cases (functions/domain/async_jobs.py) on in-memory fakes of the object store, the job table
and the endpoint: deadlines read at call time, a submit that fails half-way, a job table that fails after the
endpoint took the job, the sweeper's outcomes, who may see a job, which notifications may settle one, and how
a finished job is shown."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from functions.config.models import load_models_config
from functions.domain.async_jobs import AsyncJobService, AsyncPolicy, JobNotYetQueuedError, UnknownJobError
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import (
    EndpointTimeoutError,
    EndpointUnavailableError,
    InvalidRequestError,
    JobNotFoundError,
    ResultExpiredError,
)
from functions.domain.failures import FailureReason
from functions.domain.job_records import (
    FAILED,
    OPEN_STATUSES,
    QUEUED,
    SUBMITTING,
    SUCCEEDED,
    AsyncOutcome,
    Job,
    Settlement,
)
from functions.domain.validation import InferRequest, validate_infer_request

MODEL = load_models_config().models[0]  # iris: serverless + async (iris-async)
BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]})
NOW = 1_000_000
OWNER = "userArn:arn:aws:iam::123456789012:role/ranker"
BUDGET = DeadlineBudget(invoke_budget_ms=20_000, reserve_ms=300)
BROKEN = EndpointUnavailableError(
    "the job table (DynamoDB) is unavailable (ThrottlingException)", reason=FailureReason.JOB_TABLE_UNAVAILABLE
)


@dataclass
class Clock:
    """The Lambda's remaining time, which each store call below spends."""

    remaining: int = 28_000

    def remaining_ms(self) -> int:
        return self.remaining


@dataclass
class MemoryObjects:
    clock: Clock = field(default_factory=Clock)
    write_ms: int = 0
    objects: dict[str, bytes] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.fail:
            raise self.fail[operation]

    def put(self, key: str, body: bytes) -> str:
        self._maybe_fail("put")
        self.clock.remaining -= self.write_ms
        self.objects[f"s3://bucket/{key}"] = body
        return f"s3://bucket/{key}"

    def delete(self, uri: str) -> None:
        self._maybe_fail("delete")
        self.objects.pop(uri, None)

    def size(self, uri: str) -> int | None:
        return len(self.objects[uri]) if uri in self.objects else None

    def read(self, uri: str) -> bytes:
        return self.objects[uri]

    def presign(self, uri: str, expires_in: int) -> str:
        return f"https://presigned.example/{uri.removeprefix('s3://')}?expires={expires_in}"


@dataclass
class MemoryJobs:
    """The job table's conditional writes: create only if new, queue only from submitting, settle only if open."""

    clock: Clock = field(default_factory=Clock)
    write_ms: int = 0
    jobs: dict[str, Job] = field(default_factory=dict)
    fail: dict[str, Exception] = field(default_factory=dict)

    def _maybe_fail(self, operation: str) -> None:
        if operation in self.fail:
            raise self.fail[operation]

    def create(self, job: Job) -> None:
        self._maybe_fail("create")
        self.clock.remaining -= self.write_ms
        assert job.job_id not in self.jobs
        self.jobs[job.job_id] = job

    def mark_queued(self, job_id: str, output_location: str, failure_location: str | None, *, deadline: int) -> bool:
        self._maybe_fail("mark_queued")
        job = self.jobs[job_id]
        if job.status != SUBMITTING:
            return False
        self.jobs[job_id] = replace(job, status=QUEUED, output_location=output_location,
                                    failure_location=failure_location, deadline=deadline)  # fmt: skip
        return True

    def delete(self, job_id: str) -> None:
        self._maybe_fail("delete")
        self.jobs.pop(job_id, None)

    def get(self, job_id: str) -> Job | None:
        return self.jobs.get(job_id)

    def settle(self, job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.status not in OPEN_STATUSES:
            return False
        self.jobs[job_id] = replace(job, status=status, output_location=output_location or job.output_location,
                                    error=error)  # fmt: skip
        return True

    def overdue(self, now: int, limit: int) -> list[Job]:
        return [job for job in self.jobs.values() if job.status in OPEN_STATUSES and job.deadline < now][:limit]

    def oldest_open_created_at(self) -> int | None:
        return min((j.created_at for j in self.jobs.values() if j.status in OPEN_STATUSES), default=None)


@dataclass
class RecordingEndpoint:
    calls: list[dict[str, Any]] = field(default_factory=list)
    fail: Exception | None = None

    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int,
                     correlation_id: str | None = None) -> tuple[str, str | None]:  # fmt: skip
        self.calls.append(
            {"endpoint": endpoint, "job_id": job_id, "timeout_ms": timeout_ms, "correlation_id": correlation_id}
        )
        if self.fail is not None:
            raise self.fail
        return f"s3://bucket/output/{endpoint}/{job_id}.out", f"s3://bucket/failure/{endpoint}/{job_id}-error.out"


@dataclass
class RecordingEvents:
    cleanups: list[tuple[str, str, Exception]] = field(default_factory=list)
    unrecorded: list[tuple[str, Exception, str | None]] = field(default_factory=list)

    def cleanup_failed(self, job_id: str, what: str, error: Exception) -> None:
        self.cleanups.append((job_id, what, error))

    def queued_unrecorded(self, job_id: str, error: Exception, *, marker: str | None) -> None:
        self.unrecorded.append((job_id, error, marker))


@dataclass
class World:
    clock: Clock
    objects: MemoryObjects
    jobs: MemoryJobs
    endpoint: RecordingEndpoint
    events: RecordingEvents
    service: AsyncJobService

    def submit(self) -> Job:
        return self.service.submit(request(), owner=OWNER, now=NOW, remaining_ms=self.clock.remaining_ms, budget=BUDGET)


def request() -> InferRequest:
    return validate_infer_request(MODEL, BODY.encode())


@pytest.fixture
def world() -> World:
    clock = Clock()
    objects, jobs = MemoryObjects(clock), MemoryJobs(clock)
    endpoint, events = RecordingEndpoint(), RecordingEvents()
    policy = AsyncPolicy(invocation_timeout_s=900, request_ttl_s=3600, inline_result_max_bytes=100)
    service = AsyncJobService(objects, endpoint, jobs, policy, endpoint_name_prefix="dev-", events=events)
    return World(clock, objects, jobs, endpoint, events, service)


def test_submit_reads_the_remaining_time_right_before_the_invoke(world: World) -> None:
    world.clock.remaining = 12_000
    world.objects.write_ms = world.jobs.write_ms = 4_000  # a slow S3 put and DynamoDB write before the call
    job = world.submit()
    # What is left after the writes (12 000 - 8 000), less the response reserve: not the 11 700 read at the start.
    assert world.endpoint.calls[0]["timeout_ms"] == 4_000 - BUDGET.reserve_ms
    assert job.status == QUEUED


def test_submit_invoke_timeout_is_capped_by_the_invoke_budget(world: World) -> None:
    world.clock.remaining = 28_000
    world.submit()
    assert world.endpoint.calls[0]["timeout_ms"] == BUDGET.invoke_budget_ms


def test_submit_with_no_time_left_after_the_writes_is_a_timeout_and_leaves_no_job(world: World) -> None:
    world.clock.remaining = 5_000
    world.objects.write_ms = world.jobs.write_ms = 2_400
    with pytest.raises(EndpointTimeoutError, match="no time left"):
        world.submit()
    assert world.endpoint.calls == []
    assert (world.jobs.jobs, world.objects.objects) == ({}, {})


def test_submitting_record_is_overdue_soon_after_the_callers_own_deadline(world: World) -> None:
    world.clock.remaining = 25_000
    world.endpoint.fail = RuntimeError("the Lambda froze here")  # look at the record as it was before the invoke
    world.jobs.fail["delete"] = RuntimeError("and the cleanup failed too")
    with pytest.raises(RuntimeError, match="froze"):
        world.submit()
    (job,) = world.jobs.jobs.values()
    assert (job.status, job.deadline) == (SUBMITTING, NOW + 25 + world.service.policy.submit_grace_s)


def test_queued_job_gets_the_full_deadline(world: World) -> None:
    job = world.submit()
    assert world.jobs.jobs[job.job_id].deadline == world.service.policy.deadline(NOW) == job.deadline
    assert world.jobs.jobs[job.job_id].output_location == job.output_location


def test_refused_invoke_with_failing_cleanup_raises_the_refusal_and_reports_the_cleanup(world: World) -> None:
    world.endpoint.fail = EndpointUnavailableError(
        "async endpoint 'dev-iris-async' is unavailable", reason=FailureReason.SERVICE_UNAVAILABLE
    )
    world.jobs.fail["delete"] = BROKEN
    world.objects.fail["delete"] = RuntimeError("S3 down too")
    with pytest.raises(EndpointUnavailableError, match="dev-iris-async"):
        world.submit()
    assert [(what, error) for _, what, error in world.events.cleanups] == [
        ("job record", BROKEN),
        ("input object", world.objects.fail["delete"]),
    ]
    # Left "submitting" with a short deadline: the sweeper settles it once the caller is surely gone.
    (left,) = world.jobs.jobs.values()
    assert left.status == SUBMITTING


def test_failed_create_with_failing_cleanup_raises_the_create_error(world: World) -> None:
    world.jobs.fail["create"] = BROKEN
    world.objects.fail["delete"] = RuntimeError("S3 delete failed")
    with pytest.raises(EndpointUnavailableError) as raised:
        world.submit()
    assert raised.value is BROKEN
    assert [what for _, what, _ in world.events.cleanups] == ["input object"]
    assert world.endpoint.calls == []


def test_mark_queued_failing_after_the_invoke_still_returns_the_job_and_leaves_a_marker(world: World) -> None:
    world.jobs.fail["mark_queued"] = BROKEN
    job = world.submit()
    assert (job.status, job.public_status) == (QUEUED, "queued")
    [(job_id, error, marker)] = world.events.unrecorded
    assert (job_id, error) == (job.job_id, BROKEN)
    assert marker == f"s3://bucket/input/dev-iris-async/{job.job_id}.accepted.json"
    assert json.loads(world.objects.objects[marker]) == {
        "output_location": job.output_location,
        "failure_location": job.failure_location,
    }


def test_mark_queued_and_marker_both_failing_still_return_the_job(world: World) -> None:
    world.jobs.fail["mark_queued"] = BROKEN
    original_put = world.objects.put

    def put_input_only(key: str, body: bytes) -> str:
        if key.endswith(".accepted.json"):
            raise RuntimeError("S3 refused the marker")
        return original_put(key, body)

    world.objects.put = put_input_only  # type: ignore[method-assign]
    job = world.submit()
    assert job.job_id in world.jobs.jobs
    assert [marker for _, _, marker in world.events.unrecorded] == [None]
    assert [what for _, what, _ in world.events.cleanups] == ["accepted marker (not written)"]


def test_notification_settles_a_job_still_submitting_from_its_accepted_marker(world: World) -> None:
    world.jobs.fail["mark_queued"] = BROKEN
    job = world.submit()
    assert world.jobs.jobs[job.job_id].status == SUBMITTING
    assert job.output_location is not None
    outcome = AsyncOutcome(job.job_id, True, job.output_location, None, None)
    assert world.service.settle(outcome) is Settlement.SETTLED
    assert world.jobs.jobs[job.job_id].status == SUCCEEDED
    assert world.jobs.jobs[job.job_id].output_location == job.output_location
    assert world.service.settle(outcome) is Settlement.DUPLICATE


def test_notification_for_a_job_whose_submit_recorded_nothing_yet_is_retried_not_trusted(world: World) -> None:
    # The endpoint answered so fast that its notification arrived before the router marked the job queued.
    real_mark_queued = world.jobs.mark_queued
    world.jobs.mark_queued = lambda *args, **kwargs: True  # type: ignore[method-assign]  # not yet run
    job = world.submit()
    assert job.output_location is not None
    outcome = AsyncOutcome(job.job_id, True, job.output_location, None, None)
    with pytest.raises(JobNotYetQueuedError, match="whose submit has not recorded it yet"):
        world.service.settle(outcome)
    assert world.jobs.jobs[job.job_id].status == SUBMITTING
    assert real_mark_queued(job.job_id, job.output_location, job.failure_location, deadline=job.deadline)
    assert world.service.settle(outcome) is Settlement.SETTLED  # SQS delivers it again: now it is checked


def test_success_notification_naming_another_jobs_output_settles_nothing(world: World) -> None:
    job_a, job_b = world.submit(), world.submit()
    world.objects.objects[str(job_a.output_location)] = b'{"outputs": ["A"]}'
    forged = AsyncOutcome(job_b.job_id, True, job_a.output_location, None, None)
    assert world.service.settle(forged) is Settlement.MISMATCHED
    assert world.jobs.jobs[job_b.job_id].status == QUEUED
    assert world.jobs.jobs[job_b.job_id].output_location == job_b.output_location
    world.objects.objects[str(job_b.output_location)] = b'{"outputs": ["B"]}'
    real = AsyncOutcome(job_b.job_id, True, job_b.output_location, None, None)
    assert world.service.settle(real) is Settlement.SETTLED
    assert world.service.view(job_b.job_id, caller=OWNER).result == {"outputs": ["B"]}


@pytest.mark.parametrize(
    "forged",
    [
        AsyncOutcome("", True, None, None, None),  # "Completed" without an output location
        AsyncOutcome("", False, None, None, "ClientError: anything at all"),  # "Failed" without its location
        AsyncOutcome("", False, None, "s3://bucket/failure/dev-iris-async/other-error.out", "made up"),
    ],
    ids=["success-without-location", "failure-without-location", "failure-elsewhere"],
)
def test_notification_not_naming_the_recorded_locations_settles_nothing(world: World, forged: AsyncOutcome) -> None:
    job = world.submit()
    assert world.service.settle(replace(forged, job_id=job.job_id)) is Settlement.MISMATCHED
    assert (world.jobs.jobs[job.job_id].status, world.jobs.jobs[job.job_id].error) == (QUEUED, None)


def test_notification_for_a_submitting_job_not_naming_its_markers_locations_settles_nothing(world: World) -> None:
    world.jobs.fail["mark_queued"] = BROKEN
    job = world.submit()
    forged = AsyncOutcome(job.job_id, False, None, "s3://bucket/failure/elsewhere.out", "made up")
    assert world.service.settle(forged) is Settlement.MISMATCHED
    assert world.jobs.jobs[job.job_id].status == SUBMITTING


def test_settle_of_an_unknown_job_is_kept_for_review(world: World) -> None:
    with pytest.raises(UnknownJobError):
        world.service.settle(AsyncOutcome("f" * 32, True, "s3://bucket/output/x.out", None, None))


def test_submit_records_its_caller_as_the_jobs_owner(world: World) -> None:
    job = world.submit()
    assert world.jobs.jobs[job.job_id].owner == OWNER


@pytest.mark.parametrize("caller", ["userArn:arn:aws:iam::123456789012:role/other", "anonymous", None])
def test_view_by_another_caller_is_exactly_an_unknown_job(world: World, caller: str | None) -> None:
    job = world.submit()
    with pytest.raises(JobNotFoundError) as other:
        world.service.view(job.job_id, caller=caller)
    world.jobs.jobs.pop(job.job_id)
    with pytest.raises(JobNotFoundError) as unknown:
        world.service.view(job.job_id, caller=OWNER)
    assert (type(other.value), other.value.message) == (type(unknown.value), unknown.value.message)


@pytest.mark.parametrize("caller", [OWNER, "anonymous", None])
def test_a_job_recorded_without_an_owner_is_no_callers(world: World, caller: str | None) -> None:
    job = world.submit()
    world.jobs.jobs[job.job_id] = replace(world.jobs.jobs[job.job_id], owner=None)  # written before owners
    with pytest.raises(JobNotFoundError, match="does not exist"):
        world.service.view(job.job_id, caller=caller)


def overdue_submit(world: World) -> Job:
    """A job whose submit wrote the record and died before the endpoint answered (or before queuing it)."""
    world.jobs.fail["mark_queued"] = BROKEN
    job = world.submit()
    world.jobs.fail.clear()
    return job


def test_sweep_fails_a_submit_that_never_reached_the_endpoint(world: World) -> None:
    world.endpoint.fail = RuntimeError("killed")
    world.jobs.fail["delete"] = RuntimeError("killed")
    with pytest.raises(RuntimeError):
        world.submit()
    (job,) = world.jobs.jobs.values()
    counts = world.service.sweep(now=job.deadline + 1)
    assert counts["submit-interrupted"] == 1
    assert world.jobs.jobs[job.job_id].status == FAILED
    assert str(world.jobs.jobs[job.job_id].error).startswith("submit-interrupted")


def test_sweep_adopts_an_accepted_job_the_table_still_shows_submitting(world: World) -> None:
    job = overdue_submit(world)
    short_deadline = world.jobs.jobs[job.job_id].deadline
    counts = world.service.sweep(now=short_deadline + 1)
    assert counts == {"succeeded": 0, "failed": 0, "timeout": 0, "submit-interrupted": 0, "adopted": 1}
    adopted = world.jobs.jobs[job.job_id]
    assert (adopted.status, adopted.deadline) == (QUEUED, world.service.policy.deadline(NOW))
    assert (adopted.output_location, adopted.failure_location) == (job.output_location, job.failure_location)


def test_sweep_settles_an_accepted_submitting_job_from_its_output(world: World) -> None:
    job = overdue_submit(world)
    assert job.output_location is not None
    world.objects.objects[job.output_location] = b'{"outputs": []}'
    counts = world.service.sweep(now=world.jobs.jobs[job.job_id].deadline + 1)
    assert counts["succeeded"] == 1
    assert world.jobs.jobs[job.job_id].status == SUCCEEDED


def test_sweep_times_out_an_accepted_job_past_its_full_deadline(world: World) -> None:
    job = overdue_submit(world)
    counts = world.service.sweep(now=world.service.policy.deadline(NOW) + 1)
    assert counts["timeout"] == 1
    assert str(world.jobs.jobs[job.job_id].error).startswith("timeout")


def test_sweep_counts_only_what_it_settled_when_a_notification_wins_the_race(world: World) -> None:
    job = world.submit()
    assert job.output_location is not None
    world.objects.objects[job.output_location] = b'{"outputs": []}'
    original_settle = world.jobs.settle

    def notification_first(job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool:
        original_settle(job_id, SUCCEEDED, output_location=output_location, error=None)  # the result handler
        return original_settle(job_id, status, output_location=output_location, error=error)

    world.jobs.settle = notification_first  # type: ignore[method-assign]
    counts = world.service.sweep(now=job.deadline + 1)
    assert counts == dict.fromkeys(counts, 0)


def test_sweep_with_an_empty_failure_object_gives_a_reason(world: World) -> None:
    job = world.submit()
    assert job.failure_location is not None
    world.objects.objects[job.failure_location] = b""
    world.service.sweep(now=job.deadline + 1)
    error = world.jobs.jobs[job.job_id].error
    assert error == f"the endpoint reported a failure without a reason (empty failure object {job.failure_location})"


@pytest.mark.parametrize(
    ("failure_object", "reason"),
    [
        (b'{"error": "feature 3 is negative"}', "feature 3 is negative"),
        (b'{"message": "out of memory"}', "out of memory"),
        (b"plain words", "plain words"),
        (b'{"detail": "x"}', '{"detail": "x"}'),
    ],
)
def test_failure_reason_is_the_models_own_message(world: World, failure_object: bytes, reason: str) -> None:
    job = world.submit()
    assert job.failure_location is not None
    world.objects.objects[job.failure_location] = failure_object
    world.service.settle(AsyncOutcome(job.job_id, False, None, job.failure_location, "ClientError: ..."))
    assert world.jobs.jobs[job.job_id].error == reason


def test_failure_notification_with_an_empty_failure_object_keeps_the_notifications_reason(world: World) -> None:
    job = world.submit()
    assert job.failure_location is not None
    world.objects.objects[job.failure_location] = b"  "
    world.service.settle(AsyncOutcome(job.job_id, False, None, job.failure_location, "ServerError: timed out"))
    assert world.jobs.jobs[job.job_id].error == "ServerError: timed out"


def succeeded(world: World, output: bytes | None) -> Job:
    job = world.submit()
    assert job.output_location is not None
    if output is not None:
        world.objects.objects[job.output_location] = output
    assert world.service.settle(AsyncOutcome(job.job_id, True, job.output_location, None, None)) is Settlement.SETTLED
    return job


def test_view_of_a_small_result_is_inline(world: World) -> None:
    job = succeeded(world, b'{"outputs": [1]}')
    assert world.service.view(job.job_id, caller=OWNER).document()["result"] == {"outputs": [1]}


def test_view_of_a_large_result_is_a_presigned_url(world: World) -> None:
    job = succeeded(world, b'{"outputs": [' + b"1," * 100 + b"1]}")
    document = world.service.view(job.job_id, caller=OWNER).document()
    assert "result" not in document
    assert document["result_url"].startswith("https://presigned.example/")


def test_view_of_a_result_that_expired_is_gone_not_a_dead_link(world: World) -> None:
    job = succeeded(world, None)  # the bucket's lifecycle rule deleted the output
    with pytest.raises(ResultExpiredError, match="succeeded, but its result is no longer stored"):
        world.service.view(job.job_id, caller=OWNER)


@pytest.mark.parametrize("job_id", ["abc", "G" * 32, "0" * 33, "../../etc", "0123456789ABCDEF0123456789ABCDEF"])
def test_view_of_something_that_is_not_a_job_id_is_a_bad_request(world: World, job_id: str) -> None:
    with pytest.raises(InvalidRequestError, match="is not a job id: job ids are 32 lowercase hex characters"):
        world.service.view(job_id, caller=OWNER)


def test_view_of_an_unknown_job_id_is_not_found(world: World) -> None:
    with pytest.raises(JobNotFoundError):
        world.service.view("0" * 32, caller=OWNER)


def test_submit_keeps_the_correlation_id_on_the_record_and_sends_it_with_the_endpoint_call(world: World) -> None:
    job = world.service.submit(
        request(), owner=OWNER, now=NOW, remaining_ms=world.clock.remaining_ms, budget=BUDGET, correlation_id="req-1"
    )
    assert job.correlation_id == "req-1"
    assert world.jobs.jobs[job.job_id].correlation_id == "req-1"
    assert world.endpoint.calls[0]["correlation_id"] == "req-1"
    assert world.endpoint.calls[0]["job_id"] == job.job_id  # the InferenceId stays the job id


def test_settle_shows_the_job_it_read_before_deciding(world: World) -> None:
    job = world.service.submit(
        request(), owner=OWNER, now=NOW, remaining_ms=world.clock.remaining_ms, budget=BUDGET, correlation_id="req-1"
    )
    seen: list[Job] = []
    outcome = AsyncOutcome(job.job_id, True, "s3://elsewhere/forged.out", None, None)
    assert world.service.settle(outcome, seen=seen.append) is Settlement.MISMATCHED
    assert [j.correlation_id for j in seen] == ["req-1"]
