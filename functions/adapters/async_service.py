"""Builds the async job service from settings; imported only when a request takes the async path (or by the
results and sweeper functions, which exist for it).

:class:`AwsAsyncJobs` is the router's async port (``functions.domain.infer.AsyncJobs``): the job service on
S3, DynamoDB and the async endpoint, with Idempotency-Key handling on the idempotency table when configured.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.adapters.s3_objects import S3ObjectStore
from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings, AsyncSettingsError
from functions.config.models import load_models_config
from functions.domain.async_jobs import (
    AsyncEndpoint,
    AsyncJobService,
    AsyncPolicy,
    JobView,
    LoggedSubmitEvents,
    SubmitEvents,
)
from functions.domain.outcomes import JobReceipt
from functions.domain.result_contract import ResultContracts

if TYPE_CHECKING:
    from functions.adapters.idempotency import IdempotentSubmitter
    from functions.domain.deadline import DeadlineBudget
    from functions.domain.infer import IdempotencyScope
    from functions.domain.validation import InferRequest


def build_async_service(
    settings: AsyncSettings,
    endpoint: AsyncEndpoint | None = None,
    endpoint_name_prefix: str = "",
    events: SubmitEvents | None = None,
) -> AsyncJobService:
    policy = AsyncPolicy(
        invocation_timeout_s=settings.invocation_timeout_s,
        request_ttl_s=settings.request_ttl_s,
        inline_result_max_bytes=settings.inline_result_max_bytes,
    )
    return AsyncJobService(
        objects=S3ObjectStore(settings.bucket),
        endpoint=endpoint or SageMakerBackend(),
        jobs=DynamoDBJobStore(settings.job_table, policy.record_ttl_s),
        policy=policy,
        endpoint_name_prefix=endpoint_name_prefix,
        events=events or LoggedSubmitEvents(),
    )


def async_service_from_env(function: str) -> AsyncJobService:
    """The service for a function that exists only for the async path (results, sweeper): settings required.
    Both settle jobs, so both check results against the output contracts of the models config."""
    settings = AsyncSettings.from_env()
    if settings is None:
        raise AsyncSettingsError(f"the {function} needs ASYNC_BUCKET and JOB_TABLE")
    contracts = ResultContracts(load_models_config(os.environ.get("MODELS_CONFIG_PATH") or None))
    return replace(build_async_service(settings), contracts=contracts)


@dataclass(frozen=True)
class _RemainingTime:
    """What Powertools' idempotency reads of a Lambda context: the time left, to bound its in-progress lock."""

    remaining_ms: Callable[[], int]

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms()


@dataclass(frozen=True)
class AwsAsyncJobs:
    service: AsyncJobService
    idempotency: IdempotentSubmitter | None = None
    wall_clock: Callable[[], float] = time.time

    def submit(
        self,
        request: InferRequest,
        *,
        remaining_ms: Callable[[], int],
        budget: DeadlineBudget,
        idempotency: IdempotencyScope | None,
        caller: str | None,
        correlation_id: str | None = None,
    ) -> JobReceipt:
        def submit() -> dict[str, Any]:
            # The remaining time is read again right before the endpoint call, capped by the invoke budget.
            job = self.service.submit(
                request,
                owner=caller,
                now=int(self.wall_clock()),
                remaining_ms=remaining_ms,
                budget=budget,
                correlation_id=correlation_id,
            )
            return JobReceipt(job.job_id, job.public_status).document()

        if idempotency is None or self.idempotency is None:
            document = submit()
        else:
            document = self.idempotency.submit(
                idempotency.key,
                model=request.model.name,
                caller=idempotency.caller,
                body_sha256=idempotency.body_sha256,
                action=submit,
                context=_RemainingTime(remaining_ms),
            )
        return JobReceipt(str(document["id"]), str(document["status"]))

    def view(self, job_id: str, *, caller: str | None) -> JobView:
        return self.service.view(job_id, caller=caller)


def build_async_jobs(
    settings: AsyncSettings, endpoint: AsyncEndpoint, endpoint_name_prefix: str, events: SubmitEvents
) -> AwsAsyncJobs:
    """The router's async path on AWS; the idempotency table only when ``IDEMPOTENCY_TABLE`` is set."""
    idempotency = None
    if settings.idempotency_table is not None:
        from functions.adapters.idempotency import IdempotentSubmitter

        idempotency = IdempotentSubmitter(settings.idempotency_table)
    return AwsAsyncJobs(build_async_service(settings, endpoint, endpoint_name_prefix, events), idempotency)
