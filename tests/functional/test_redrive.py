"""ops/redrive.py against moto's SQS: batches bounded by count and by size, dry run, limit, progress."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from local.aws import AsyncResources, LocalAsyncResources, LocalAws, aws_client, create_async_resources
from ops.redrive import (
    BATCH_MAX_BYTES,
    message_size,
    progress_printer,
    queue_depth,
    redrive,
    size_bounded_batches,
)


@pytest.fixture
def resources(aws: LocalAws) -> AsyncResources:
    return create_async_resources(aws.url, LocalAsyncResources.unique("redrive"))


@pytest.fixture
def sqs(aws: LocalAws) -> Any:
    return aws_client("sqs", aws.url)


def fill(sqs: Any, queue_url: str, bodies: list[str]) -> None:
    for body in bodies:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)


def notification(job: int, padding: int = 0) -> str:
    return json.dumps({"eventName": "InferenceResult", "inferenceId": f"{job:032x}", "failureReason": "x" * padding})


def test_redrive_of_large_notifications_splits_batches_by_size(sqs: Any, resources: AsyncResources) -> None:
    # Ten ~150 KB messages: 1.5 MB in one SendMessageBatch is over SQS's total (moto enforces 1 MiB).
    bodies = [notification(i, padding=150_000) for i in range(10)]
    fill(sqs, resources.dead_letter_queue_url, bodies)
    result = redrive(sqs, resources.dead_letter_queue_url, resources.result_queue_url)
    assert (result.moved, result.failed) == (10, 0)
    assert queue_depth(sqs, resources.dead_letter_queue_url) == 0
    moved: list[str] = []
    while messages := sqs.receive_message(QueueUrl=resources.result_queue_url, MaxNumberOfMessages=10).get("Messages"):
        moved += [m["Body"] for m in messages]
    assert sorted(moved) == sorted(bodies)


def test_size_bounded_batches_respect_count_and_bytes() -> None:
    small = [{"Body": "s" * 100} for _ in range(25)]
    assert [len(batch) for batch in size_bounded_batches(small)] == [10, 10, 5]
    large = [{"Body": "l" * 100_000} for _ in range(5)]
    batches = size_bounded_batches(large)
    assert [len(batch) for batch in batches] == [2, 2, 1]
    assert all(sum(message_size(m) for m in batch) <= BATCH_MAX_BYTES for batch in batches)
    oversized = [{"Body": "o" * (BATCH_MAX_BYTES + 1)}, {"Body": "s"}]
    assert [len(batch) for batch in size_bounded_batches(oversized)] == [1, 1]  # a big one goes alone


def test_message_size_counts_attributes() -> None:
    message = {"Body": "ab", "MessageAttributes": {"k": {"DataType": "String", "StringValue": "vvv"}}}
    assert message_size(message) == 2 + len("k") + len("String") + len("vvv")


def test_dry_run_counts_and_moves_nothing(sqs: Any, resources: AsyncResources) -> None:
    fill(sqs, resources.dead_letter_queue_url, [notification(i) for i in range(3)])
    result = redrive(sqs, resources.dead_letter_queue_url, resources.result_queue_url, dry_run=True)
    assert (result.moved, result.remaining_estimate, result.dry_run) == (0, 3, True)
    assert queue_depth(sqs, resources.dead_letter_queue_url) == 3
    assert queue_depth(sqs, resources.result_queue_url) == 0


def test_limit_moves_at_most_that_many_and_reports_progress(sqs: Any, resources: AsyncResources) -> None:
    fill(sqs, resources.dead_letter_queue_url, [notification(i) for i in range(25)])
    seen: list[tuple[int, int]] = []
    result = redrive(
        sqs, resources.dead_letter_queue_url, resources.result_queue_url, limit=12, progress=lambda *p: seen.append(p)
    )
    assert result.moved == 12
    assert queue_depth(sqs, resources.dead_letter_queue_url) == 13
    assert seen[-1] == (12, 12)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


def test_progress_printer_off_a_terminal_prints_a_line_per_hundred_and_the_end() -> None:
    stream = io.StringIO()
    show = progress_printer(stream)
    for done in range(10, 251, 10):
        show(done, 250)
    assert stream.getvalue().splitlines() == [
        "redrive: 100/250 moved",
        "redrive: 200/250 moved",
        "redrive: 250/250 moved",
    ]
