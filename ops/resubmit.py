"""Re-submit a failed async job: same model, same input, a new job id (the old job keeps its failure)."""

from __future__ import annotations

import time

from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.model_types import ModelsConfig
from functions.domain.async_jobs import AsyncJobService
from functions.domain.deadline import DeadlineBudget
from functions.domain.job_records import FAILED, Job
from functions.domain.validation import validate_infer_request

# An operator's shell has no Lambda deadline: the submit's window (its "submitting" record's deadline) and the
# endpoint call's timeout are fixed instead.
SUBMIT_WINDOW_MS = 30_000
SUBMIT_CALL_MS = 10_000


class ResubmitError(RuntimeError):
    """The job cannot be re-submitted; the message says why."""


def resubmit(service: AsyncJobService, config: ModelsConfig, job_id: str, *, force: bool = False) -> Job:
    """Submit the input of ``job_id`` again as a new job. Only a failed job, unless ``force``."""
    job = service.jobs.get(job_id)
    if job is None:
        raise ResubmitError(f"job {job_id!r} does not exist")
    if job.status != FAILED and not force:
        raise ResubmitError(f"job {job_id!r} is {job.public_status}, not failed (use --force to submit it again)")
    model = config.model(job.model)
    if model is None:
        raise ResubmitError(f"job {job_id!r} ran model {job.model!r}, which is no longer configured")
    try:
        body = service.objects.read(job.input_location)
    except Exception as error:
        raise ResubmitError(f"the input of job {job_id!r} ({job.input_location}) cannot be read: {error}") from error
    # The input passed validation once; check it again against today's model config.
    request = validate_infer_request(model, body, max_body_bytes=LAMBDA_MAX_BODY_BYTES)
    # The new job is the same caller's, so they can read it as they could the old one.
    return service.submit(request, owner=job.owner, now=int(time.time()), remaining_ms=lambda: SUBMIT_WINDOW_MS,
                          budget=DeadlineBudget(SUBMIT_CALL_MS, 0))  # fmt: skip
