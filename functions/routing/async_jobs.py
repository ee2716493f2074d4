"""The async use cases: submit a job, report it, settle it from a notification, sweep the overdue.

Domain code: the object store, the async endpoint and the job table come in behind small protocols.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any, Protocol

from functions.common.errors import InferenceError, JobNotFoundError
from functions.common.jobs import FAILED, INPUT_PREFIX, QUEUED, SUBMITTING, SUCCEEDED, AsyncOutcome, Job
from functions.routing.validation import InferRequest


class ObjectStore(Protocol):
    def put(self, key: str, body: bytes) -> str: ...
    def delete(self, uri: str) -> None: ...
    def size(self, uri: str) -> int | None: ...
    def read(self, uri: str) -> bytes: ...
    def presign(self, uri: str, expires_in: int) -> str: ...


class AsyncEndpoint(Protocol):
    def invoke_async(self, endpoint: str, input_location: str, job_id: str, *, timeout_ms: int,
                     invocation_timeout_s: int, request_ttl_s: int) -> tuple[str, str | None]: ...  # fmt: skip


class JobStore(Protocol):
    def create(self, job: Job) -> None: ...
    def mark_queued(self, job_id: str, output_location: str, failure_location: str | None) -> None: ...
    def delete(self, job_id: str) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def settle(self, job_id: str, status: str, *, output_location: str | None, error: str | None) -> bool: ...
    def overdue(self, now: int, limit: int) -> list[Job]: ...
    def oldest_open_created_at(self) -> int | None: ...


class UnknownJobError(Exception):
    """A notification names a job the table never had: kept for review (the message goes to the DLQ)."""


@dataclass(frozen=True)
class AsyncPolicy:
    invocation_timeout_s: int = 900
    request_ttl_s: int = 3600
    # Time for a notification to travel SNS -> SQS -> result Lambda before the sweeper calls a job lost.
    settle_grace_s: int = 120
    inline_result_max_bytes: int = 1024 * 1024
    result_url_expiry_s: int = 3600
    record_ttl_s: int = 7 * 24 * 3600

    def deadline(self, now: int) -> int:
        return now + self.request_ttl_s + self.invocation_timeout_s + self.settle_grace_s


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

    def submit(self, request: InferRequest, *, now: int, remaining_ms: int, reserve_ms: int) -> Job:
        """Store the input, record the job, invoke the endpoint; on a failed submit leave no job behind."""
        endpoint_name = request.model.route.async_endpoint
        if endpoint_name is None:
            raise InferenceError(f"model {request.model.name!r} has no async route")
        job_id = uuid.uuid4().hex
        physical_endpoint = self.endpoint_name_prefix + endpoint_name
        # Under the endpoint's own prefix: its execution role may read only there.
        input_location = self.objects.put(f"{INPUT_PREFIX}{physical_endpoint}/{job_id}.json", request.body)
        job = Job(job_id, request.model.name, physical_endpoint, SUBMITTING, now, self.policy.deadline(now),
                  input_location)  # fmt: skip
        try:
            self.jobs.create(job)
        except Exception:
            self.objects.delete(input_location)
            raise
        try:
            output_location, failure_location = self.endpoint.invoke_async(
                job.endpoint, input_location, job_id, timeout_ms=max(remaining_ms - reserve_ms, 50),
                invocation_timeout_s=self.policy.invocation_timeout_s, request_ttl_s=self.policy.request_ttl_s,
            )  # fmt: skip
        except Exception:
            self.jobs.delete(job_id)
            self.objects.delete(input_location)
            raise
        self.jobs.mark_queued(job_id, output_location, failure_location)
        return replace(job, status=QUEUED, output_location=output_location, failure_location=failure_location)

    def view(self, job_id: str) -> JobView:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobNotFoundError(f"job {job_id!r} does not exist")
        if job.status != SUCCEEDED or job.output_location is None:
            return JobView(job)
        size = self.objects.size(job.output_location)
        if size is not None and size <= self.policy.inline_result_max_bytes:
            return JobView(job, result=_json_or_text(self.objects.read(job.output_location)))
        return JobView(job, result_url=self.objects.presign(job.output_location, self.policy.result_url_expiry_s))

    def settle(self, outcome: AsyncOutcome) -> bool:
        """Move the job to its terminal state; False when it had already settled (a duplicate notification)."""
        if outcome.succeeded:
            settled = self.jobs.settle(outcome.job_id, SUCCEEDED, output_location=outcome.output_location, error=None)
        else:
            settled = self.jobs.settle(
                outcome.job_id, FAILED, output_location=None, error=self._failure_reason(outcome)
            )
        if not settled and self.jobs.get(outcome.job_id) is None:
            raise UnknownJobError(f"notification for job {outcome.job_id!r}, which the job table does not hold")
        return settled

    def sweep(self, *, now: int, limit: int = 100) -> dict[str, int]:
        """Settle jobs past their deadline that no notification settled: from S3 if the endpoint wrote an
        output or failure object, else as failed with ``timeout``. Returns counts by outcome."""
        counts = {"succeeded": 0, "failed": 0, "timeout": 0, "submit-interrupted": 0}
        for job in self.jobs.overdue(now, limit):
            if job.status == SUBMITTING:
                reason = "submit-interrupted: the router stopped before the endpoint acknowledged the job"
                self.jobs.settle(job.job_id, FAILED, output_location=None, error=reason)
                counts["submit-interrupted"] += 1
            elif job.output_location and self.objects.size(job.output_location) is not None:
                self.jobs.settle(job.job_id, SUCCEEDED, output_location=job.output_location, error=None)
                counts["succeeded"] += 1
            elif job.failure_location and self.objects.size(job.failure_location) is not None:
                reason = _reason_text(self.objects.read(job.failure_location))
                self.jobs.settle(job.job_id, FAILED, output_location=None, error=reason)
                counts["failed"] += 1
            else:
                self.jobs.settle(job.job_id, FAILED, output_location=None,
                                 error=f"timeout: no result by the deadline ({job.deadline})")  # fmt: skip
                counts["timeout"] += 1
        return counts

    def oldest_open_age_s(self, *, now: int) -> int:
        """How long the oldest unfinished job has waited (0 when none is open): what on-call watches."""
        created = self.jobs.oldest_open_created_at()
        return 0 if created is None else max(0, now - created)

    def _failure_reason(self, outcome: AsyncOutcome) -> str:
        if outcome.failure_location:
            try:
                if (self.objects.size(outcome.failure_location) or 0) > 0:
                    return _reason_text(self.objects.read(outcome.failure_location))
            except Exception:  # noqa: S110 - the notification's own reason still explains the failure
                pass
        return outcome.reason or "the endpoint reported a failure without a reason"


def _json_or_text(body: bytes) -> Any:
    import json

    try:
        return json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace")


def _reason_text(body: bytes, limit: int = 2000) -> str:
    return body.decode("utf-8", "replace").strip()[:limit]
