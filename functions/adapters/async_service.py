"""Builds the async job service from settings; imported only when a request takes the async path."""

from __future__ import annotations

from functions.adapters.dynamodb_jobs import DynamoDBJobStore
from functions.adapters.s3_objects import S3ObjectStore
from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings, AsyncSettingsError
from functions.domain.async_jobs import AsyncJobService, AsyncPolicy, LoggedSubmitEvents, SubmitEvents


def build_async_service(
    settings: AsyncSettings,
    backend: SageMakerBackend | None = None,
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
        endpoint=backend or SageMakerBackend(),
        jobs=DynamoDBJobStore(settings.job_table, policy.record_ttl_s),
        policy=policy,
        endpoint_name_prefix=endpoint_name_prefix,
        events=events or LoggedSubmitEvents(),
    )


def async_service_from_env(function: str) -> AsyncJobService:
    """The service for a function that exists only for the async path (results, sweeper): settings required."""
    settings = AsyncSettings.from_env()
    if settings is None:
        raise AsyncSettingsError(f"the {function} needs ASYNC_BUCKET and JOB_TABLE")
    return build_async_service(settings)
