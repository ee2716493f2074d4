"""Move messages from the dead-letter queue back to the result queue, once the cause is fixed.

Receive, send, delete, ten at a time: a message is deleted from the DLQ only after the result queue
accepted it, so an interrupted redrive duplicates at worst (the result handler ignores a duplicate
notification) and never loses one. This works against SQS and the local emulator alike (moto has no
``StartMessageMoveTask``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TextIO

BATCH: Final[int] = 10
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
        entries = []
        for index, message in enumerate(messages):
            entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
        accepted = {item["Id"] for item in sent.get("Successful", [])}
        failed += len(sent.get("Failed", []))
        done = [(str(i), m["ReceiptHandle"]) for i, m in enumerate(messages) if str(i) in accepted]
        if done:
            sqs.delete_message_batch(
                QueueUrl=source_url, Entries=[{"Id": i, "ReceiptHandle": handle} for i, handle in done]
            )
        moved += len(done)
        if progress is not None:
            progress(moved, max(goal, moved))
    return RedriveResult(moved=moved, failed=failed, remaining_estimate=queue_depth(sqs, source_url), dry_run=False)


def progress_printer(stream: TextIO = sys.stderr) -> Callable[[int, int], None]:
    """A one-line progress bar on a terminal, a line per hundred messages otherwise."""
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
