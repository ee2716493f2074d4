"""A stand-in for the router's async port where a test only needs to know what was submitted (the real
S3 and DynamoDB path is tested against moto in tests/functional/test_async_*)."""

from __future__ import annotations

from typing import Any

from functions.domain.outcomes import JobReceipt
from functions.domain.validation import InferRequest


class RecordingAsyncJobs:
    """The async port, recording each submitted request's model name."""

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def submit(self, request: InferRequest, **_: Any) -> JobReceipt:
        self.submitted.append(request.model.name)
        return JobReceipt(f"job-{len(self.submitted)}", "queued")

    def view(self, job_id: str, **_: Any) -> Any:
        raise AssertionError("no job is read in these tests")
