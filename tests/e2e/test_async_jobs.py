"""The async path end to end over real HTTP on 127.0.0.1: 202 + job, who may read a job (callers told apart
by ``x-api-key``, as in the dev stage), the SNS -> SQS -> result handler pipeline, the dead-letter queue and
redrive, the sweeper, and a 200-job soak with injected failures."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from functions.config.async_contract import INPUT_PREFIX
from functions.domain.job_records import TERMINAL_STATUSES
from local.aws import aws_client
from local.model_variants import write_models_with_variants
from local.result_poller import CrashFault
from local.sagemaker_runtime import FaultSpec
from local.stack import AsyncOptions, LocalStack, start_local_stack
from ops.redrive import queue_depth, redrive
from ops.resubmit import resubmit

pytestmark = pytest.mark.e2e

ASYNC_ENDPOINT = "iris-async"
ROW = [5.1, 3.5, 1.4, 0.2]


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


def infer_body(rows: list[list[float]]) -> bytes:
    return json.dumps(
        {"inputs": [{"name": "input", "shape": [len(rows), 4], "datatype": "FP32", "data": rows}]}
    ).encode()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # iris (sync + async) and iris-gpu: the same model behind an async-only route.
    spill_resilience = {"spill_async": True, "retry": {"max_attempts": 2, "base_delay_ms": 5, "max_delay_ms": 10}}
    config = write_models_with_variants(
        tmp_path_factory.mktemp("config"),
        {
            "iris-gpu": {"route": {"sync": None, "async_endpoint": "iris-gpu"}},
            "iris-spill": {"resilience": spill_resilience},
        },
    )
    options = AsyncOptions(visibility_timeout_s=1, max_receive_count=2, sweep_interval_s=3600)
    saved = os.environ.get("JOB_RESULT_INLINE_MAX_BYTES")
    os.environ["JOB_RESULT_INLINE_MAX_BYTES"] = "20000"
    local = start_local_stack(api_port=0, config_path=str(config), async_options=options)
    yield local
    local.stop()
    if saved is None:
        os.environ.pop("JOB_RESULT_INLINE_MAX_BYTES", None)
    else:
        os.environ["JOB_RESULT_INLINE_MAX_BYTES"] = saved


def call(
    stack: LocalStack, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Answer:
    request = urllib.request.Request(stack.api.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Answer(response.status, dict(response.headers), json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), json.loads(error.read()))


def submit(stack: LocalStack, body: bytes, model: str = "iris", **headers: str) -> Answer:
    return call(stack, "POST", f"/v2/models/{model}/infer", body, {"Prefer": "respond-async", **headers})


def job(stack: LocalStack, job_id: str, **headers: str) -> dict[str, Any]:
    answer = call(stack, "GET", f"/v2/jobs/{job_id}", headers=headers)
    assert answer.status == 200, answer
    document: dict[str, Any] = answer.body
    return document


def wait_terminal(
    stack: LocalStack, job_ids: list[str], timeout_s: float = 30.0, **headers: str
) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout_s
    views: dict[str, dict[str, Any]] = {}
    pending = list(job_ids)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            view = job(stack, job_id, **headers)
            if view["status"] in TERMINAL_STATUSES:
                views[job_id] = view
                pending.remove(job_id)
        if pending:
            time.sleep(0.1)
    assert not pending, f"{len(pending)} job(s) never settled, e.g. {job(stack, pending[0], **headers)}"
    return views


def job_count(stack: LocalStack) -> int:
    assert stack.resources is not None
    assert stack.aws is not None
    scan = aws_client("dynamodb", stack.aws.url).scan(TableName=stack.resources.job_table, Select="COUNT")
    return int(scan["Count"])


def input_objects(stack: LocalStack) -> int:
    assert stack.resources is not None
    assert stack.aws is not None
    listing = aws_client("s3", stack.aws.url).list_objects_v2(Bucket=stack.resources.bucket, Prefix=INPUT_PREFIX)
    return int(listing.get("KeyCount", 0))


def sweep(stack: LocalStack, *, ahead_s: int) -> dict[str, int]:
    """Run the real sweeper use case with its clock ``ahead_s`` seconds in the future (no waiting for deadlines)."""
    assert stack.job_service is not None
    return stack.job_service.sweep(now=int(time.time()) + ahead_s, limit=1000)


def deadline_span(stack: LocalStack) -> int:
    assert stack.job_service is not None
    return stack.job_service.policy.deadline(0) + 1


def settle_pipeline(stack: LocalStack, timeout_s: float = 30.0) -> None:
    """Wait until the endpoint's workers are idle and the result queue is empty (processed or dead-lettered)."""
    assert stack.resources is not None
    assert stack.aws is not None
    assert stack.runtime.wait_async_idle(timeout_s)
    sqs = aws_client("sqs", stack.aws.url)
    deadline = time.monotonic() + timeout_s
    while queue_depth(sqs, stack.resources.result_queue_url) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert queue_depth(sqs, stack.resources.result_queue_url) == 0


@pytest.fixture(autouse=True)
def healthy(stack: LocalStack) -> Iterator[None]:
    stack.runtime.clear_faults()
    assert stack.result_poller is not None
    stack.result_poller.set_crash_fault(CrashFault())
    yield
    stack.runtime.clear_faults()
    stack.result_poller.set_crash_fault(CrashFault())


def test_job_result_equals_the_sync_answer(stack: LocalStack) -> None:
    body = infer_body([ROW, [6.7, 3.0, 5.2, 2.3]])
    sync = call(stack, "POST", "/v2/models/iris/infer", body)
    assert sync.status == 200
    accepted = submit(stack, body)
    assert accepted.status == 202
    assert accepted.headers["Location"] == f"/v2/jobs/{accepted.body['id']}"
    assert accepted.headers["Preference-Applied"] == "respond-async"
    assert accepted.body["status"] == "queued"
    [view] = wait_terminal(stack, [accepted.body["id"]]).values()
    assert view["status"] == "succeeded"
    assert view["result"] == sync.body


def test_async_only_model_answers_202_without_the_header(stack: LocalStack) -> None:
    accepted = call(stack, "POST", "/v2/models/iris-gpu/infer", infer_body([ROW]))
    assert accepted.status == 202
    assert "Preference-Applied" not in accepted.headers
    [view] = wait_terminal(stack, [accepted.body["id"]]).values()
    assert view["status"] == "succeeded"
    assert view["result"]["model_name"] == "iris-gpu"


def test_a_body_too_large_for_sync_goes_async(stack: LocalStack) -> None:
    body = infer_body([ROW])
    padded = body[:-1] + b" " * (1024 * 1024) + b"}"  # valid JSON, over iris's 1 MiB sync limit
    accepted = call(stack, "POST", "/v2/models/iris/infer", padded)
    assert accepted.status == 202
    [view] = wait_terminal(stack, [accepted.body["id"]]).values()
    assert view["status"] == "succeeded"


def test_a_large_result_comes_back_as_a_presigned_url(stack: LocalStack) -> None:
    accepted = submit(stack, infer_body([ROW] * 1000))  # ~60 KB of outputs, over the 20 KB inline limit
    view = wait_terminal(stack, [accepted.body["id"]])[accepted.body["id"]]
    assert view["status"] == "succeeded"
    assert "result" not in view
    with urllib.request.urlopen(view["result_url"], timeout=10) as fetched:
        document = json.loads(fetched.read())
    assert document["outputs"][0]["shape"] == [1000]


def test_an_unavailable_endpoint_spills_to_async_when_the_model_allows(stack: LocalStack) -> None:
    stack.runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    answer = call(stack, "POST", "/v2/models/iris-spill/infer", infer_body([ROW]))
    assert answer.status == 202
    assert answer.headers["X-Inference-Degraded"] == "service-unavailable; spilled-async"
    [view] = wait_terminal(stack, [answer.body["id"]]).values()
    assert view["status"] == "succeeded"  # the async endpoint was healthy
    refused = call(stack, "POST", "/v2/models/iris/infer", infer_body([ROW]))
    assert refused.status == 503  # the same fault, for a model without spill_async


# The spill_async column of the README's fault table: (fault, the Lambda's time in ms) -> status, degraded.
SPILL_CELLS: dict[str, tuple[FaultSpec | str, int, int, str | None]] = {
    "transient": (FaultSpec(error="ThrottlingException", error_rate=1.0), 28_000, 202, "throttled; spilled-async"),
    "circuit-open": ("trip", 28_000, 202, "circuit-open; spilled-async"),
    # 3 s Lambda: the sync attempt gets what is left after the spill reserve, times out, and the job still fits.
    "deadline": (FaultSpec(latency_ms=3_000), 3_000, 202, "deadline; spilled-async"),
    # Too little time for the attempt and a submit after it: the honest answer is the 504.
    "deadline-no-time-to-spill": (FaultSpec(latency_ms=3_000), 1_600, 504, None),
    "model-error-5xx": (FaultSpec(error="ModelError", error_rate=1.0, model_status=500), 28_000, 502, None),
    "model-error-4xx": (FaultSpec(error="ModelError", error_rate=1.0, model_status=400), 28_000, 400, None),
    "validation-error": (FaultSpec(error="ValidationError", error_rate=1.0), 28_000, 502, None),
}


@pytest.mark.parametrize("fault", SPILL_CELLS)
def test_spill_async_cell(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], fault: str
) -> None:
    cause, timeout_ms, expected_status, expected_degraded = SPILL_CELLS[fault]
    stack.fresh_router()  # every circuit closed
    if cause == "trip":
        stack.runtime.set_fault("iris", FaultSpec(error="InternalFailure", error_rate=1.0))
        for _ in range(3):  # 2 attempts each: past the default threshold of 5 consecutive failures
            call(stack, "POST", "/v2/models/iris-spill/infer", infer_body([ROW]))
        assert stack.router.use_case.endpoint.breakers.for_endpoint("iris").state == "open"
    else:
        assert isinstance(cause, FaultSpec)
        stack.runtime.set_fault("iris", cause)
    monkeypatch.setattr(stack.api, "timeout_ms", timeout_ms)
    jobs_before = job_count(stack)
    capsys.readouterr()
    started = time.monotonic()
    answer = call(stack, "POST", "/v2/models/iris-spill/infer", infer_body([ROW]))
    elapsed_ms = (time.monotonic() - started) * 1000
    metrics = [line for line in capsys.readouterr().out.splitlines() if '"DegradedAnswers"' in line]
    assert (answer.status, answer.headers.get("X-Inference-Degraded")) == (expected_status, expected_degraded)
    assert elapsed_ms < timeout_ms
    if expected_degraded is None:
        assert "error" in answer.body
        assert job_count(stack) == jobs_before  # no job for a refusal
        assert metrics == []
        return
    assert answer.headers["Location"] == f"/v2/jobs/{answer.body['id']}"
    why, _, answered_by = expected_degraded.rpartition(";")
    [metric] = [json.loads(line) for line in metrics]
    assert (metric["model"], metric["reason"], metric["cause"]) == ("iris-spill", answered_by.strip(), why.strip())
    [view] = wait_terminal(stack, [answer.body["id"]]).values()
    assert view["status"] == "succeeded"  # the async endpoint was healthy


def test_a_refused_spill_is_a_503_and_not_counted_as_degraded(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.fresh_router()  # every circuit closed
    stack.runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    jobs_before = job_count(stack)
    capsys.readouterr()
    answer = call(stack, "POST", "/v2/models/iris-spill/infer", infer_body([ROW]))
    assert answer.status == 503
    assert "X-Inference-Degraded" not in answer.headers
    assert int(answer.headers["Retry-After"]) >= 1
    assert '"DegradedAnswers"' not in capsys.readouterr().out
    assert job_count(stack) == jobs_before


def test_model_error_ends_failed_with_the_models_message(stack: LocalStack) -> None:
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ModelError", error_rate=1.0, model_status=500))
    accepted = submit(stack, infer_body([ROW]))
    assert accepted.status == 202
    [view] = wait_terminal(stack, [accepted.body["id"]]).values()
    assert view["status"] == "failed"
    # The model's own message (its 500 body was {"error": "injected model failure"}), not SageMaker's wrapper.
    assert view["error"] == "injected model failure", view
    assert "result" not in view


def test_unknown_job_is_404(stack: LocalStack) -> None:
    answer = call(stack, "GET", "/v2/jobs/0123456789abcdef0123456789abcdef")
    assert answer.status == 404
    assert "does not exist" in answer.body["error"]


def test_a_job_is_its_api_keys_alone(stack: LocalStack) -> None:
    alice, bob = {"x-api-key": "alice-key-0001"}, {"x-api-key": "bob-key-0002"}
    accepted = submit(stack, infer_body([ROW]), **alice)
    assert accepted.status == 202
    job_id = accepted.body["id"]
    assert wait_terminal(stack, [job_id], **alice)[job_id]["status"] == "succeeded"
    unknown = call(stack, "GET", "/v2/jobs/0123456789abcdef0123456789abcdef", headers=bob)
    for other in (bob, {}):  # another key; no key at all (the anonymous local caller)
        answer = call(stack, "GET", f"/v2/jobs/{job_id}", headers=other)
        assert answer.status == unknown.status == 404
        assert answer.body == {"error": unknown.body["error"].replace("0123456789abcdef" * 2, job_id)}
        assert answer.headers["Content-Type"] == unknown.headers["Content-Type"]


def test_the_same_idempotency_key_from_two_api_keys_is_two_jobs(stack: LocalStack) -> None:
    alice, bob = {"x-api-key": "alice-key-0001"}, {"x-api-key": "bob-key-0002"}
    key = {"Idempotency-Key": "order-per-caller"}
    first = submit(stack, infer_body([ROW]), **alice, **key)
    other = submit(stack, infer_body([ROW]), **bob, **key)
    again = submit(stack, infer_body([ROW]), **alice, **key)
    assert first.status == other.status == again.status == 202
    assert again.body["id"] == first.body["id"] != other.body["id"]
    assert call(stack, "GET", f"/v2/jobs/{other.body['id']}", headers=bob).status == 200
    assert call(stack, "GET", f"/v2/jobs/{other.body['id']}", headers=alice).status == 404


def test_a_forged_notification_through_the_topic_settles_nothing_and_the_real_one_still_does(
    stack: LocalStack,
) -> None:
    assert stack.resources is not None
    assert stack.aws is not None
    assert stack.job_service is not None
    job_a = submit(stack, infer_body([ROW])).body["id"]  # class 0
    assert wait_terminal(stack, [job_a])[job_a]["status"] == "succeeded"
    a_record = stack.job_service.jobs.get(job_a)
    assert a_record is not None
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(latency_ms=3000))  # B's real notification comes later
    job_b = submit(stack, infer_body([[6.7, 3.0, 5.2, 2.3]])).body["id"]  # class 2
    # Anyone allowed to publish to the success topic: job B "completed", with job A's output.
    forged = {
        "eventName": "InferenceResult",
        "eventSource": "aws:sagemaker",
        "invocationStatus": "Completed",
        "inferenceId": job_b,
        "responseParameters": {"contentType": "application/json", "outputLocation": a_record.output_location},
    }
    sns = aws_client("sns", stack.aws.url)
    sns.publish(TopicArn=stack.resources.success_topic_arn, Message=json.dumps(forged))
    sqs = aws_client("sqs", stack.aws.url)
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline and queue_depth(sqs, stack.resources.result_queue_url):
        time.sleep(0.1)
    assert queue_depth(sqs, stack.resources.result_queue_url) == 0  # the forgery was received and dropped
    assert job(stack, job_b)["status"] == "queued"
    view = wait_terminal(stack, [job_b])[job_b]
    assert view["status"] == "succeeded"
    assert view["result"]["outputs"][0]["data"] == [2]  # B's own answer, not A's


def test_bad_async_request_is_400_and_creates_no_job(stack: LocalStack) -> None:
    jobs_before, inputs_before = job_count(stack), input_objects(stack)
    bad = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT8", "data": [1, 2, 3, 4]}]})
    answer = submit(stack, bad.encode())
    assert answer.status == 400
    assert "input 'input'" in answer.body["error"]
    assert (job_count(stack), input_objects(stack)) == (jobs_before, inputs_before)


def test_duplicate_idempotency_key_gives_one_job(stack: LocalStack) -> None:
    body = infer_body([ROW])
    jobs_before = job_count(stack)
    first = submit(stack, body, **{"Idempotency-Key": "order-4711"})
    again = submit(stack, body, **{"Idempotency-Key": "order-4711"})
    assert first.status == again.status == 202
    assert first.body["id"] == again.body["id"]
    assert job_count(stack) == jobs_before + 1
    reused = submit(stack, infer_body([[6.7, 3.0, 5.2, 2.3]]), **{"Idempotency-Key": "order-4711"})
    assert reused.status == 422
    assert "different request body" in reused.body["error"]


def test_endpoint_refusing_the_submit_is_a_clear_503_with_no_orphan_job(stack: LocalStack) -> None:
    jobs_before, inputs_before = job_count(stack), input_objects(stack)
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    answer = submit(stack, infer_body([ROW]))
    assert answer.status == 503
    assert answer.headers.get("Retry-After")
    assert ASYNC_ENDPOINT in answer.body["error"]
    assert (job_count(stack), input_objects(stack)) == (jobs_before, inputs_before)


def test_a_lost_notification_is_settled_by_the_sweeper(stack: LocalStack) -> None:
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(drop_notification_rate=1.0))
    accepted = submit(stack, infer_body([ROW]))
    settle_pipeline(stack)
    assert job(stack, accepted.body["id"])["status"] == "queued"
    counts = sweep(stack, ahead_s=deadline_span(stack))
    assert counts["succeeded"] >= 1
    view = job(stack, accepted.body["id"])
    assert view["status"] == "succeeded"
    assert view["result"]["outputs"][0]["data"] == [0]


def test_result_handler_crash_retries_then_dead_letters_and_redrive_recovers(stack: LocalStack) -> None:
    assert stack.resources is not None
    assert stack.aws is not None
    assert stack.result_poller is not None
    sqs = aws_client("sqs", stack.aws.url)
    accepted = submit(stack, infer_body([ROW]))
    job_id = accepted.body["id"]
    stack.result_poller.set_crash_fault(CrashFault(job_ids=frozenset({job_id})))
    crashes_before = stack.result_poller.stats.crashes
    settle_pipeline(stack)
    # Received max_receive_count times, the real handler crashed settling it each time (reported as a batch
    # item failure), then SQS moved it to the dead-letter queue.
    assert stack.result_poller.stats.crashes - crashes_before == stack.resources.max_receive_count
    assert queue_depth(sqs, stack.resources.dead_letter_queue_url) == 1
    assert job(stack, job_id)["status"] == "queued"

    dry = redrive(sqs, stack.resources.dead_letter_queue_url, stack.resources.result_queue_url, dry_run=True)
    assert (dry.moved, dry.remaining_estimate) == (0, 1)
    stack.result_poller.set_crash_fault(CrashFault())  # the bug is fixed
    moved = redrive(sqs, stack.resources.dead_letter_queue_url, stack.resources.result_queue_url)
    assert moved.moved == 1
    view = wait_terminal(stack, [job_id])[job_id]
    assert view["status"] == "succeeded"
    assert queue_depth(sqs, stack.resources.dead_letter_queue_url) == 0


def test_a_failed_job_can_be_resubmitted(stack: LocalStack) -> None:
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ModelError", error_rate=1.0))
    failed_id = submit(stack, infer_body([ROW])).body["id"]
    assert wait_terminal(stack, [failed_id])[failed_id]["status"] == "failed"
    stack.runtime.clear_faults()
    assert stack.job_service is not None
    again = resubmit(stack.job_service, stack.router.config, failed_id)
    assert again.job_id != failed_id
    assert wait_terminal(stack, [again.job_id])[again.job_id]["status"] == "succeeded"
    assert job(stack, failed_id)["status"] == "failed"  # the record of the failure stays


def test_200_jobs_with_injected_failures_all_end_accounted_for(stack: LocalStack) -> None:
    """Model errors, result-handler crashes and lost notifications, at about 6% each; nothing may be lost."""
    assert stack.resources is not None
    assert stack.aws is not None
    assert stack.result_poller is not None
    sqs = aws_client("sqs", stack.aws.url)
    started = time.monotonic()
    stack.runtime.seed(4)
    stack.runtime.set_fault(ASYNC_ENDPOINT, FaultSpec(error="ModelError", error_rate=0.06, drop_notification_rate=0.06))
    stack.result_poller.set_crash_fault(CrashFault(rate=0.06, seed=4))
    stack.runtime.reset_async_stats()
    crashes_before = stack.result_poller.stats.crashes
    rows = [[round(4.3 + (i % 36) * 0.1, 1), 3.0, round(1.0 + (i % 59) * 0.1, 1), 1.2] for i in range(200)]
    job_ids = []
    for row in rows:
        accepted = submit(stack, infer_body([row]))
        assert accepted.status == 202, accepted
        job_ids.append(accepted.body["id"])
    settle_pipeline(stack, timeout_s=60)

    stats = {
        "failed": stack.runtime.async_stats.failed,
        "notifications_dropped": stack.runtime.async_stats.notifications_dropped,
    }
    crashed = stack.result_poller.stats.crashes - crashes_before
    dead_letters = queue_depth(sqs, stack.resources.dead_letter_queue_url)
    injected = stats["failed"] + stats["notifications_dropped"] + dead_letters
    assert injected >= 20, (stats, dead_letters)  # at least 10% of 200 jobs hit a fault

    # Recovery, as on-call would do it: fix the handler, redrive the dead letters, let the sweeper run.
    stack.result_poller.set_crash_fault(CrashFault())
    moved = redrive(sqs, stack.resources.dead_letter_queue_url, stack.resources.result_queue_url)
    assert moved.moved == dead_letters
    settle_pipeline(stack)
    swept = sweep(stack, ahead_s=deadline_span(stack))

    views = wait_terminal(stack, job_ids)
    failed = {job_id: view for job_id, view in views.items() if view["status"] == "failed"}
    succeeded = {job_id: view for job_id, view in views.items() if view["status"] == "succeeded"}
    assert len(failed) + len(succeeded) == 200
    assert len(failed) == stats["failed"]  # exactly the model errors, each with its reason
    assert {view["error"] for view in failed.values()} <= {"injected model failure"}
    for job_id, row in zip(job_ids, rows, strict=True):
        if job_id in succeeded:
            assert succeeded[job_id]["result"] == call(stack, "POST", "/v2/models/iris/infer", infer_body([row])).body
    assert queue_depth(sqs, stack.resources.dead_letter_queue_url) == 0
    print(
        f"\nsoak: 200 jobs in {time.monotonic() - started:.1f} s; model errors {stats['failed']}, "
        f"lost notifications {stats['notifications_dropped']} (swept {swept}), handler crashes {crashed} "
        f"-> {dead_letters} dead letters, redriven {moved.moved}; final: {len(succeeded)} succeeded, "
        f"{len(failed)} failed, DLQ 0"
    )
