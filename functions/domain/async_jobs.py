"""The async use cases: submit a job, report it, settle it from a notification, sweep the overdue.

Domain code: the object store, the async endpoint and the job table come in behind small protocols.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final, Protocol

from functions.config.async_contract import ACCEPTED_MARKER_SUFFIX, INPUT_PREFIX
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import InferenceError, InvalidRequestError, JobNotFoundError, ResultExpiredError
from functions.domain.job_records import (
    FAILED,
    JOB_ID_PATTERN,
    QUEUED,
    SUBMITTING,
    SUCCEEDED,
    TERMINAL_STATUSES,
    AsyncOutcome,
    Job,
    Settlement,
)
from functions.domain.output_contract import OutputContractError
from functions.domain.result_contract import ResultContracts
from functions.domain.validation import InferRequest

logger = logging.getLogger(__name__)
# The sweeper's outcomes, each a metric (JobsSwept<Outcome>); "timeout" is the one that means lost work.
SWEEP_OUTCOMES: Final[tuple[str, ...]] = ("succeeded", "failed", "timeout", "submit-interrupted", "adopted")


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes) -> str: ...
    def delete(self, uri: str) -> None: ...
    def size(self, uri: str) -> int | None: ...
    def read(self, uri: str) -> bytes: ...
    def presign(self, uri: str, expires_in: int) -> str: ...


class AsyncEndpoint(Protocol):
    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int,
                     correlation_id: str | None = None) -> tuple[str, str | None]: ...  # fmt: skip


class JobStore(Protocol):
    def create(self, job: Job) -> None: ...
    def mark_queued(self, job_id: str, output_location: str, failure_location: str | None,
                    *, deadline: int) -> bool: ...  # fmt: skip
    def delete(self, job_id: str) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def settle(self, job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool: ...
    def overdue(self, now: int, limit: int) -> list[Job]: ...
    def oldest_open_created_at(self) -> int | None: ...


class SubmitEvents(Protocol):
    """What a submit reports besides its answer: the anomalies on-call should see, none of which the caller must."""

    def cleanup_failed(self, job_id: str, what: str, error: Exception) -> None: ...
    def queued_unrecorded(self, job_id: str, error: Exception, *, marker: str | None) -> None: ...


class LoggedSubmitEvents:
    """The default: log each anomaly (the router adds a metric, functions/handlers/router/handler.py)."""

    def cleanup_failed(self, job_id: str, what: str, error: Exception) -> None:
        logger.warning("job %s: could not remove the %s of a failed submit: %r", job_id, what, error)

    def queued_unrecorded(self, job_id: str, error: Exception, *, marker: str | None) -> None:
        logger.error("job %s: accepted by the endpoint, not marked queued (%r); marker %s", job_id, error, marker)


class UnknownJobError(Exception):
    """A notification names a job the table never had: kept for review (the message goes to the DLQ)."""


class JobNotYetQueuedError(Exception):
    """A notification for a job whose submit has not recorded its locations yet: retried (SQS redelivers it
    after the visibility timeout), by when the router has marked the job queued."""


@dataclass(frozen=True)
class AsyncPolicy:
    invocation_timeout_s: int = 900
    request_ttl_s: int = 3600
    # Time for a notification to travel SNS -> SQS -> result Lambda before the sweeper calls a job lost.
    settle_grace_s: int = 120
    # A record still "submitting" this long after its submitter's own deadline belongs to a submit that died.
    submit_grace_s: int = 60
    inline_result_max_bytes: int = 1024 * 1024
    result_url_expiry_s: int = 3600
    record_ttl_s: int = 7 * 24 * 3600

    def deadline(self, now: int) -> int:
        """When a queued job must have settled: SageMaker's own TTL and timeout, and the notification's travel."""
        return now + self.request_ttl_s + self.invocation_timeout_s + self.settle_grace_s

    def submit_deadline(self, now: int, remaining_ms: int) -> int:
        """When a "submitting" record is overdue: the submitter (a Lambda) is certainly gone by then."""
        return now + -(-remaining_ms // 1000) + self.submit_grace_s


@dataclass(frozen=True)
class JobView:
    """A job as ``GET /v2/jobs/{id}`` shows it."""

    job: Job
    result: Any = None
    result_url: str | None = None

    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = {"id": self.job.job_id, "status": self.job.public_status, "model": self.job.model}
        if self.result is not None:
            document["result"] = self.result
        if self.result_url is not None:
            document["result_url"] = self.result_url
        if self.job.error is not None:
            document["error"] = self.job.error
        return document


@dataclass(frozen=True)
class AsyncJobService:
    objects: ObjectStore
    endpoint: AsyncEndpoint
    jobs: JobStore
    policy: AsyncPolicy
    endpoint_name_prefix: str = ""
    events: SubmitEvents = field(default_factory=LoggedSubmitEvents)
    # The output contracts a result must keep for its job to succeed; None: results are not checked.
    contracts: ResultContracts | None = None

    def submit(
        self,
        request: InferRequest,
        *,
        owner: str | None,
        now: int,
        remaining_ms: Callable[[], int],
        budget: DeadlineBudget,
        correlation_id: str | None = None,
    ) -> Job:
        """Store the input, record the job as ``owner``'s, invoke the endpoint; on a failed submit leave no job.

        ``remaining_ms`` is read again right before the endpoint call (the S3 and DynamoDB writes before it take
        time), and the call's timeout is ``budget``'s share of what is left. Once the endpoint has the job the
        caller gets its id whatever happens next: a job table that cannot be told is reported, not raised.
        ``correlation_id`` (the API request's id) is kept on the record and sent with the endpoint call.
        """
        endpoint_name = request.model.route.async_endpoint
        if endpoint_name is None:
            raise InferenceError(f"model {request.model.name!r} has no async route")
        job_id = uuid.uuid4().hex
        physical_endpoint = self.endpoint_name_prefix + endpoint_name
        # Under the endpoint's own prefix: its execution role may read only there.
        input_location = self.objects.put(f"{INPUT_PREFIX}{physical_endpoint}/{job_id}.json", request.body)
        # Overdue soon after this call's own end, so the sweeper settles a submit that died half-way quickly.
        job = Job(job_id, request.model.name, physical_endpoint, SUBMITTING, now,
                  self.policy.submit_deadline(now, remaining_ms()), input_location, owner=owner,
                  correlation_id=correlation_id)  # fmt: skip
        try:
            self.jobs.create(job)
        except Exception:
            self._cleanup(job_id, "input object", lambda: self.objects.delete(input_location))
            raise
        try:
            output_location, failure_location = self.endpoint.invoke_async(
                job.endpoint, input_location, job_id, timeout_ms=budget.invoke_timeout_ms(remaining_ms()),
                invocation_timeout_s=self.policy.invocation_timeout_s, request_ttl_s=self.policy.request_ttl_s,
                correlation_id=correlation_id,
            )  # fmt: skip
        except Exception:
            # If the record cannot be deleted it stays "submitting" and the sweeper fails it after its deadline.
            self._cleanup(job_id, "job record", lambda: self.jobs.delete(job_id))
            self._cleanup(job_id, "input object", lambda: self.objects.delete(input_location))
            raise
        queued = replace(job, status=QUEUED, deadline=self.policy.deadline(now), output_location=output_location,
                         failure_location=failure_location)  # fmt: skip
        try:
            self.jobs.mark_queued(job_id, output_location, failure_location, deadline=queued.deadline)
        except Exception as error:
            # The endpoint runs the job: its notification settles it even from "submitting". The marker lets
            # the sweeper follow it (output and failure locations) should that notification be lost too.
            self.events.queued_unrecorded(job_id, error, marker=self._write_accepted_marker(queued))
        return queued

    def view(self, job_id: str, *, caller: str | None) -> JobView:
        """``caller``'s job: another caller's is answered exactly as a job that does not exist (no oracle)."""
        if not JOB_ID_PATTERN.fullmatch(job_id):
            raise InvalidRequestError(f"{job_id[:80]!r} is not a job id: job ids are 32 lowercase hex characters")
        job = self.jobs.get(job_id)
        if job is None or not job.readable_by(caller):
            raise JobNotFoundError(f"job {job_id!r} does not exist")
        if job.status != SUCCEEDED or job.output_location is None:
            return JobView(job)
        size = self.objects.size(job.output_location)
        if size is None:
            raise ResultExpiredError(
                f"job {job_id!r} succeeded, but its result is no longer stored (the async bucket keeps results for a "
                "limited number of days): submit the request again"
            )
        if size <= self.policy.inline_result_max_bytes:
            return JobView(job, result=_json_or_text(self.objects.read(job.output_location)))
        return JobView(job, result_url=self.objects.presign(job.output_location, self.policy.result_url_expiry_s))

    def settle(
        self,
        outcome: AsyncOutcome,
        *,
        seen: Callable[[Job], None] | None = None,
        violated: Callable[[str, str], None] | None = None,
    ) -> Settlement:
        """Move the job to its terminal state if the notification names the locations recorded at submit.

        A notification whose locations differ settles nothing (:attr:`Settlement.MISMATCHED`), so the real one
        still can; one for a job already settled is a duplicate. A job still "submitting" is checked against
        its accepted marker; without one its locations are not known yet and the notification is retried.
        ``seen`` is told the job as the table holds it, before anything is decided (the result handler logs
        under its correlation id). A success whose result breaks the model's output contract settles the job
        as failed with the breach as its error (:attr:`Settlement.REFUSED`), and ``violated`` is told the model
        and the check.
        """
        job = self.jobs.get(outcome.job_id)
        if job is None:
            raise UnknownJobError(f"notification for job {outcome.job_id[:80]!r}, which the job table does not hold")
        if seen is not None:
            seen(job)
        if job.status in TERMINAL_STATUSES:
            return Settlement.DUPLICATE
        recorded = self._read_accepted_marker(job) if job.status == SUBMITTING else job
        if recorded is None:
            raise JobNotYetQueuedError(f"notification for job {job.job_id!r}, whose submit has not recorded it yet")
        if not outcome.matches(recorded):
            return Settlement.MISMATCHED
        if outcome.succeeded:
            assert recorded.output_location is not None  # a success matches only the recorded output location
            breach = self._breach(job, recorded.output_location)
            if breach is not None:
                if not self.jobs.settle(job.job_id, FAILED, output_location=None, error=str(breach)):
                    return Settlement.DUPLICATE
                if violated is not None:
                    violated(job.model, str(breach.check))
                return Settlement.REFUSED
            settled = self.jobs.settle(job.job_id, SUCCEEDED, output_location=recorded.output_location, error=None)
        else:
            settled = self.jobs.settle(job.job_id, FAILED, output_location=None, error=self._failure_reason(outcome))
        return Settlement.SETTLED if settled else Settlement.DUPLICATE

    def sweep(
        self, *, now: int, limit: int = 100, violated: Callable[[str, str], None] | None = None
    ) -> dict[str, int]:
        """Settle jobs past their deadline that no notification settled: from S3 if the endpoint wrote an
        output or failure object, else as failed with ``timeout``. Returns counts by outcome
        (:data:`SWEEP_OUTCOMES`) of the jobs this sweep moved: one a notification settled first is not counted.
        A result that breaks the model's output contract fails its job (outcome "failed"), and ``violated`` is
        told the model and the check, as :meth:`settle` tells it."""
        counts = dict.fromkeys(SWEEP_OUTCOMES, 0)
        for job in self.jobs.overdue(now, limit):
            outcome = self._sweep_one(job, now, violated)
            if outcome is not None:
                counts[outcome] += 1
        return counts

    def oldest_open_age_s(self, *, now: int) -> int:
        """How long the oldest unfinished job has waited (0 when none is open): what on-call watches."""
        created = self.jobs.oldest_open_created_at()
        return 0 if created is None else max(0, now - created)

    def _sweep_one(self, job: Job, now: int, violated: Callable[[str, str], None] | None) -> str | None:
        """The outcome this sweep gave ``job``, or None when another writer (a notification) settled it first."""
        adopted = False
        if job.status == SUBMITTING:
            accepted = self._read_accepted_marker(job)
            if accepted is None:
                reason = "submit-interrupted: the router stopped before the endpoint acknowledged the job"
                return self._settled("submit-interrupted", job, FAILED, error=reason)
            job, adopted = accepted, True
        if job.output_location and self.objects.size(job.output_location) is not None:
            breach = self._breach(job, job.output_location)
            if breach is not None:
                outcome = self._settled("failed", job, FAILED, error=str(breach))
                if outcome is not None and violated is not None:
                    violated(job.model, str(breach.check))
                return outcome
            return self._settled("succeeded", job, SUCCEEDED, output_location=job.output_location)
        if job.failure_location and self.objects.size(job.failure_location) is not None:
            reason = _reason_text(self.objects.read(job.failure_location)) or (
                f"the endpoint reported a failure without a reason (empty failure object {job.failure_location})"
            )
            return self._settled("failed", job, FAILED, error=reason)
        if adopted and job.deadline > now:
            # The endpoint has the job and its time is not up: queue it, as the router could not.
            assert job.output_location is not None  # the marker always names it
            queued = self.jobs.mark_queued(job.job_id, job.output_location, job.failure_location, deadline=job.deadline)
            return "adopted" if queued else None
        return self._settled("timeout", job, FAILED, error=f"timeout: no result by the deadline ({job.deadline})")

    def _settled(
        self, outcome: str, job: Job, status: str, *, output_location: str | None = None, error: str | None = None
    ) -> str | None:
        settled = self.jobs.settle(job.job_id, status, output_location=output_location, error=error)
        return outcome if settled else None

    def _breach(self, job: Job, output_location: str) -> OutputContractError | None:
        return None if self.contracts is None else self.contracts.breach(job.model, output_location, self.objects)

    def _cleanup(self, job_id: str, what: str, action: Callable[[], None]) -> None:
        """Best effort, so the error that made the submit fail is the one the caller sees."""
        try:
            action()
        except Exception as error:
            self.events.cleanup_failed(job_id, what, error)

    def _write_accepted_marker(self, job: Job) -> str | None:
        document = {"output_location": job.output_location, "failure_location": job.failure_location}
        try:
            return self.objects.put(_accepted_marker_key(job), json.dumps(document).encode())
        except Exception as error:
            self.events.cleanup_failed(job.job_id, "accepted marker (not written)", error)
            return None

    def _read_accepted_marker(self, job: Job) -> Job | None:
        """The job as queued, from the marker a submit wrote when the endpoint took it; None without one."""
        location = job.input_location.rsplit("/", 1)[0] + f"/{job.job_id}{ACCEPTED_MARKER_SUFFIX}"
        if self.objects.size(location) is None:
            return None
        document = _json_or_text(self.objects.read(location))
        output_location = document.get("output_location") if isinstance(document, dict) else None
        if not isinstance(output_location, str):
            return None
        failure_location = document.get("failure_location")
        return replace(job, status=QUEUED, deadline=self.policy.deadline(job.created_at),
                       output_location=output_location,
                       failure_location=failure_location if isinstance(failure_location, str) else None)  # fmt: skip

    def _failure_reason(self, outcome: AsyncOutcome) -> str:
        if outcome.failure_location:
            try:
                if (self.objects.size(outcome.failure_location) or 0) > 0:
                    reason = _reason_text(self.objects.read(outcome.failure_location))
                    if reason:
                        return reason
            except Exception:  # noqa: S110 - the notification's own reason still explains the failure
                pass
        return outcome.reason or "the endpoint reported a failure without a reason"


def _accepted_marker_key(job: Job) -> str:
    return f"{INPUT_PREFIX}{job.endpoint}/{job.job_id}{ACCEPTED_MARKER_SUFFIX}"


def _json_or_text(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _reason_text(body: bytes, limit: int = 2000) -> str:
    """A failure object as a reason: the model's own message when it answered ``{"error": "..."}`` (or
    ``"message"``), else the text; "" when it is empty."""
    text = body.decode("utf-8", "replace").strip()
    try:
        document = json.loads(text)
    except ValueError:
        return text[:limit]
    if isinstance(document, dict):
        for key in ("error", "message"):
            if isinstance(document.get(key), str) and document[key].strip():
                return str(document[key]).strip()[:limit]
    return text[:limit]
