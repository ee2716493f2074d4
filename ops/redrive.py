"""Move messages from the dead-letter queue back to the result queue, once the cause is fixed.

Receive, send, delete, ten at a time: a message is deleted from the DLQ only after the result queue
accepted it, so an interrupted redrive duplicates at worst (the result handler ignores a duplicate
notification) and never loses one. This works against SQS and the local emulator alike (moto has no
``StartMessageMoveTask``).

A ``SendMessageBatch`` is bounded by count (10) and by the sum of its messages' sizes, so the messages
received are sent in batches that respect both: a notification can be large (a long failure reason, or an
inline response), and ten of them can exceed the total a batch may carry.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

BATCH: Final[int] = 10
# SQS's SendMessageBatch total (the sum of bodies and attributes) is 1 MiB since 2025, 256 KiB before, and
# some partitions still document 256 KiB: 256 KiB holds everywhere. A larger single message goes alone.
BATCH_MAX_BYTES: Final[int] = 256 * 1024
# A received message stays hidden this long: enough to send it on and delete it.
IN_FLIGHT_VISIBILITY_S: Final[int] = 60
EMPTY_RECEIVES_TO_STOP: Final[int] = 2


@dataclass(frozen=True)
class RedriveResult:
    moved: int
    failed: int
    remaining_estimate: int
    dry_run: bool


def queue_depth(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def redrive(
    sqs: Any,
    source_url: str,
    target_url: str,
    *,
    dry_run: bool = False,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> RedriveResult:
    """Move up to ``limit`` messages (all by default); ``dry_run`` only counts what would move."""
    total = queue_depth(sqs, source_url)
    goal = total if limit is None else min(total, limit)
    if dry_run:
        return RedriveResult(moved=0, failed=0, remaining_estimate=total, dry_run=True)
    moved = failed = empty = 0
    while (limit is None or moved < limit) and empty < EMPTY_RECEIVES_TO_STOP:
        wanted = BATCH if limit is None else min(BATCH, limit - moved)
        messages = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,
            VisibilityTimeout=IN_FLIGHT_VISIBILITY_S,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not messages:
            empty += 1
            continue
        empty = 0
        for chunk in size_bounded_batches(messages):
            sent_ok, sent_failed = _move(sqs, source_url, target_url, chunk)
            moved += sent_ok
            failed += sent_failed
            if progress is not None:
                progress(moved, max(goal, moved))
    return RedriveResult(moved=moved, failed=failed, remaining_estimate=queue_depth(sqs, source_url), dry_run=False)


def message_size(message: dict[str, Any]) -> int:
    """What a message counts against the batch limit: its body plus each attribute's name, type and value."""
    size = len(message["Body"].encode("utf-8"))
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        value = attribute.get("StringValue")
        raw = value.encode("utf-8") if value is not None else bytes(attribute.get("BinaryValue") or b"")
        size += len(name.encode("utf-8")) + len(str(attribute.get("DataType", "")).encode("utf-8")) + len(raw)
    return size


def size_bounded_batches(
    messages: list[dict[str, Any]], max_count: int = BATCH, max_bytes: int = BATCH_MAX_BYTES
) -> list[list[dict[str, Any]]]:
    """Consecutive batches of at most ``max_count`` messages and ``max_bytes`` in all (a larger message alone)."""
    batches: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    current_bytes = 0
    for message in messages:
        size = message_size(message)
        if current and (len(current) == max_count or current_bytes + size > max_bytes):
            batches.append(current)
            current, current_bytes = [], 0
        current.append(message)
        current_bytes += size
    if current:
        batches.append(current)
    return batches


def _move(sqs: Any, source_url: str, target_url: str, messages: list[dict[str, Any]]) -> tuple[int, int]:
    """Send one batch on, delete from the source what the target accepted: (moved, failed to send)."""
    entries = []
    for index, message in enumerate(messages):
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
        if message.get("MessageAttributes"):
            entry["MessageAttributes"] = message["MessageAttributes"]
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
    accepted = {item["Id"] for item in sent.get("Successful", [])}
    done = [(str(i), m["ReceiptHandle"]) for i, m in enumerate(messages) if str(i) in accepted]
    if done:
        sqs.delete_message_batch(
            QueueUrl=source_url, Entries=[{"Id": i, "ReceiptHandle": handle} for i, handle in done]
        )
    return len(done), len(sent.get("Failed", []))


def progress_printer(stream: TextIO | None = None) -> Callable[[int, int], None]:
    """A one-line progress bar on a terminal, a line per hundred messages otherwise (on stderr by default)."""
    stream = stream or sys.stderr
    interactive = stream.isatty()
    last = {"printed": 0}

    def show(done: int, total: int) -> None:
        if interactive:
            width = 30
            filled = width * done // max(total, 1)
            stream.write(f"\rredrive [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
            stream.flush()
        elif done - last["printed"] >= 100 or done == total:
            stream.write(f"redrive: {done}/{total} moved\n")
            last["printed"] = done

    return show
