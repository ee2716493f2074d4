"""Async jobs: the record the job table keeps, and the SageMaker async notification that settles one.

Plain data and parsing, no AWS imports: the result Lambda, the sweeper and the router share it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

SUBMITTING: Final[str] = "submitting"  # the record exists, invoke_endpoint_async not yet acknowledged
QUEUED: Final[str] = "queued"
SUCCEEDED: Final[str] = "succeeded"
FAILED: Final[str] = "failed"
# No "running": a SageMaker async endpoint says nothing when it starts a request (only when it ends, by SNS),
# so a job is ``queued`` until it settles. Reporting "running" would be a guess.
OPEN_STATUSES: Final[tuple[str, ...]] = (SUBMITTING, QUEUED)
TERMINAL_STATUSES: Final[tuple[str, ...]] = (SUCCEEDED, FAILED)
# Job ids are ``uuid4().hex``: anything else cannot name a job (and is refused before reaching the table).
JOB_ID_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Job:
    job_id: str
    model: str
    endpoint: str
    status: str
    created_at: int
    deadline: int
    input_location: str
    output_location: str | None = None
    failure_location: str | None = None
    error: str | None = None
    # Who submitted it (functions/handlers/router/caller.py): only they can read it. None on a record written
    # before owners were recorded: no caller can prove it is theirs, so none can read it.
    owner: str | None = None
    # The id of the API request that submitted it (API Gateway's request id): the result handler logs it when
    # it settles the job, so one request can be followed from the router to its result. None on older records.
    correlation_id: str | None = None

    def readable_by(self, caller: str | None) -> bool:
        return self.owner is not None and self.owner == caller

    @property
    def public_status(self) -> str:
        """What callers see: a job still being submitted is, to them, queued."""
        return QUEUED if self.status == SUBMITTING else self.status


@dataclass(frozen=True)
class AsyncOutcome:
    """How SageMaker says an async inference ended (its SNS ``InferenceResult`` notification)."""

    job_id: str
    succeeded: bool
    output_location: str | None
    failure_location: str | None
    reason: str | None

    def matches(self, job: Job) -> bool:
        """Whether this notification names the locations ``invoke_endpoint_async`` gave ``job`` at submit.

        Anyone allowed to publish to the topics (or send to the queue) can write a notification; only the
        endpoint that took the job knows its output and failure locations, which the router recorded.
        """
        if self.succeeded:
            return self.output_location is not None and self.output_location == job.output_location
        return self.failure_location == job.failure_location


class Settlement(StrEnum):
    """What a notification did to its job."""

    SETTLED = "settled"
    DUPLICATE = "duplicate"  # the job had already settled: the conditional write refused it
    MISMATCHED = "mismatched"  # its locations are not the job's: ignored, the job stays open for the real one
    REFUSED = "refused"  # a success whose result broke the model's output contract: the job failed


class NotificationError(ValueError):
    """A queue message that is not a SageMaker async inference notification."""


def parse_notification(body: str) -> AsyncOutcome:
    """Read an SQS message body holding an SNS envelope (or, with raw delivery, the notification itself).

    Example:
        >>> parse_notification('{"Type": "Notification", "Message": "{\\"invocationStatus\\": ...}"}')
    """
    try:
        document: Any = json.loads(body)
        if isinstance(document, dict) and document.get("Type") == "Notification":
            document = json.loads(document["Message"])
    except (ValueError, KeyError, TypeError) as error:
        raise NotificationError(f"message is not JSON or not an SNS notification: {error}") from error
    if not isinstance(document, dict) or document.get("eventName") != "InferenceResult":
        raise NotificationError("message is not a SageMaker InferenceResult notification")
    job_id = document.get("inferenceId")
    status = document.get("invocationStatus")
    if not isinstance(job_id, str) or status not in ("Completed", "Failed"):
        raise NotificationError(f"notification lacks inferenceId or a known invocationStatus ({status!r})")
    response = document.get("responseParameters") or {}
    return AsyncOutcome(
        job_id=job_id,
        succeeded=status == "Completed",
        output_location=response.get("outputLocation"),
        failure_location=response.get("failureLocation"),
        reason=document.get("failureReason"),
    )
