"""The result Lambda's event source mapping, locally: poll the SQS result queue, call the handler in-process
with a real-shaped SQS event, delete what it settled, leave what it reported as failed.

As on AWS: a record the handler reports in ``batchItemFailures`` is not deleted and comes back after the
visibility timeout; an invocation that crashes deletes nothing; after ``maxReceiveCount`` receives SQS (moto)
moves the message to the dead-letter queue. Crashes can be injected per job, to prove exactly that.

An injected crash happens inside the real handler: the poller builds the handler with the results factory
(functions/handlers/results/app.py) around the job service wrapped in a :class:`CrashingService`, whose
``settle`` raises for the chosen jobs, so the message goes through the real
parsing, Powertools batch processing and failure reporting, and nothing is settled. The handler itself has no
fault hook (production code must not), and raising around its call instead would come too late: by then it has
settled the job, and the dead letter would recover nothing.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from functions.domain.job_records import AsyncOutcome, Settlement

from local.account import ACCOUNT_ID, REGION
from local.api_gateway import LocalLambdaContext

logger = logging.getLogger(__name__)

# The ESM's batch size and a short long-poll, so a stop is noticed quickly.
BATCH_SIZE: Final[int] = 10
WAIT_TIME_S: Final[int] = 1
SqsHandler = Callable[[dict[str, Any], Any], Any]


@dataclass
class CrashFault:
    """Which jobs' notifications make the result function crash: a seeded share of them, or named jobs.

    A job chosen once is chosen on every receive of its notification (a poison message), until the fault is
    cleared.
    """

    rate: float = 0.0
    job_ids: frozenset[str] = frozenset()
    seed: int = 0

    def crashes_on(self, job_id: str) -> bool:
        if job_id in self.job_ids:
            return True
        if self.rate <= 0:
            return False
        digest = int.from_bytes(hashlib.sha256(f"{self.seed}:{job_id}".encode()).digest()[:8], "big")
        return random.Random(digest).random() < self.rate


class InjectedCrashError(RuntimeError):
    """The crash local mode injects into the result handler's settle step."""


class CrashingService:
    """The result handler's job service with crashes injected: ``settle`` raises for the jobs the poller's
    fault chooses, before anything is written; everything else is the real service's."""

    def __init__(self, inner: Any, poller: ResultPoller) -> None:
        self.inner = inner
        self._poller = poller

    def settle(self, outcome: AsyncOutcome, *, seen: Any = None, violated: Any = None) -> Settlement:
        if self._poller.crash_fault().crashes_on(outcome.job_id):
            self._poller.count_crash()
            logger.info("result poller: injected crash settling job %s", outcome.job_id)
            raise InjectedCrashError(f"injected crash while settling job {outcome.job_id}")
        settlement: Settlement = self.inner.settle(outcome, seen=seen, violated=violated)
        return settlement

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class PollerStats:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    reported_failures: int = 0
    crashes: int = 0
    errors: list[str] = field(default_factory=list)


class ResultPoller:
    """Polls ``queue_url`` on a thread and feeds ``handler`` SQS events, like Lambda's SQS event source.

    The handler is ``create_handler`` (the results factory) over ``service`` wrapped in a
    :class:`CrashingService`: the seam crashes are injected through.
    """

    def __init__(
        self,
        service: Any,
        create_handler: Callable[[Any], Callable[..., Any]],
        sqs: Any,
        queue_url: str,
        queue_arn: str,
    ) -> None:
        self.handler = create_handler(CrashingService(service, self))
        self.sqs = sqs
        self.queue_url = queue_url
        self.queue_arn = queue_arn
        self.crash = CrashFault()
        self.stats = PollerStats()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="result-poller", daemon=True)

    def start(self) -> ResultPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=WAIT_TIME_S + 5)

    def set_crash_fault(self, fault: CrashFault) -> None:
        with self._lock:
            self.crash = fault

    def crash_fault(self) -> CrashFault:
        with self._lock:
            return self.crash

    def count_crash(self) -> None:
        with self._lock:
            self.stats.crashes += 1

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                self.poll_once()
            except Exception as error:  # the poller outlives any one bad receive, as the ESM does
                logger.exception("result poller: receive failed")
                self.stats.errors.append(repr(error))
                time.sleep(0.2)

    def poll_once(self) -> int:
        """Receive one batch and process it; returns how many messages were received."""
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=WAIT_TIME_S,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        if not messages:
            return 0
        self._invoke(messages)
        return len(messages)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [self._record(message) for message in messages]}
        self.stats.invocations += 1
        self.stats.records += len(messages)
        try:
            answer = self.handler(event, LocalLambdaContext(function_name="results", timeout_ms=30_000))
        except Exception as error:
            # Lambda counts an unhandled error as the whole batch failing: nothing is deleted.
            logger.exception("result handler failed; the batch returns after the visibility timeout")
            self.stats.errors.append(repr(error))
            return
        failed = {item["itemIdentifier"] for item in (answer or {}).get("batchItemFailures", [])}
        self.stats.reported_failures += len(failed)
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), BATCH_SIZE):
            chunk = done[start : start + BATCH_SIZE]
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
            self.stats.deleted += len(chunk)

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        """An SQS record exactly as Lambda's event source mapping shapes it."""
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value["DataType"],
                }
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": REGION,
        }


class SweeperLoop:
    """Calls the sweeper handler every ``interval_s``, as its EventBridge schedule does on AWS."""

    def __init__(self, handler: SqsHandler, interval_s: float) -> None:
        self.handler = handler
        self.interval_s = interval_s
        self.runs = 0
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def start(self) -> SweeperLoop:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stopped.wait(self.interval_s):
            try:
                self.handler(_scheduled_event(), LocalLambdaContext(function_name="sweeper", timeout_ms=60_000))
                self.runs += 1
            except Exception:
                logger.exception("sweeper run failed; the next one retries")


def _scheduled_event() -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"local-{time.time_ns()}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [],
        "detail": {},
    }
