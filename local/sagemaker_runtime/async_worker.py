"""The async endpoints: ``InvokeEndpointAsync`` as SageMaker answers it, and the worker pool behind it.

The input is an S3 object named in ``X-Amzn-SageMaker-InputLocation``; the call answers 202 with
``{"InferenceId"}`` and the output and failure locations in headers; ``max_concurrent_invocations`` workers
per endpoint (like ``MaxConcurrentInvocationsPerInstance``) read the input, run the model, write
``<uuid>.out`` under the output path or ``<uuid>-error.out`` under the failure path, and publish the
``InferenceResult`` notification to the success or error SNS topic.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from functions.config.async_contract import split_s3_uri
from functions.config.limits import ASYNC_MAX_INVOCATION_TIMEOUT_S, ASYNC_MAX_REQUEST_TTL_S, ASYNC_MIN_REQUEST_TTL_S
from local.account import ACCOUNT_ID, REGION
from local.sagemaker_runtime.errors import Reply, endpoint_not_found, error_answer, injected_error
from local.sagemaker_runtime.notifications import inference_result
from serving.service import Answer

if TYPE_CHECKING:
    from collections.abc import Container

    from local.sagemaker_runtime.faults import FaultInjector
    from serving.service import InvocationService

# InvokeEndpointAsync's bounds and defaults (API reference, InvokeEndpointAsync): min, max, default.
REQUEST_TTL_S: Final[tuple[int, int, int]] = (ASYNC_MIN_REQUEST_TTL_S, ASYNC_MAX_REQUEST_TTL_S, ASYNC_MAX_REQUEST_TTL_S)
INVOCATION_TIMEOUT_S: Final[tuple[int, int, int]] = (1, ASYNC_MAX_INVOCATION_TIMEOUT_S, 900)
INFERENCE_ID_MAX: Final[int] = 64
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AsyncEndpointSpec:
    """An async endpoint: its serving code and its ``AsyncInferenceConfig`` (output/failure S3 paths, topics).

    Paths are ``s3://bucket/prefix/`` URIs; a topic of None means no notification, as in SageMaker.
    """

    service: InvocationService
    output_path: str
    failure_path: str
    success_topic_arn: str | None = None
    error_topic_arn: str | None = None
    max_concurrent_invocations: int = 4

    def __post_init__(self) -> None:
        for name, path in (("output_path", self.output_path), ("failure_path", self.failure_path)):
            try:
                split_s3_uri(path)
            except ValueError:
                raise ValueError(f"{name} {path!r} must be an s3://bucket/prefix/ URI ending in '/'") from None
            if not path.endswith("/"):
                raise ValueError(f"{name} {path!r} must be an s3://bucket/prefix/ URI ending in '/'")
        if self.max_concurrent_invocations < 1:
            raise ValueError(f"max_concurrent_invocations {self.max_concurrent_invocations} must be at least 1")


@dataclass(frozen=True, slots=True)
class AsyncJob:
    """One accepted async invocation; every random fault decision is drawn at submit, so a seeded runtime
    fails the same jobs whatever order the workers run them in."""

    endpoint: str
    inference_id: str
    input_location: str
    output_location: str
    failure_location: str
    received: datetime
    request_ttl_s: int
    invocation_timeout_s: int
    request: dict[str, str | None]  # contentType, accept, customAttributes as the call sent them
    latency_ms: float
    model_error_status: int | None
    drop_notification: bool
    answer: bytes | None = None  # an injected answer, written as the output instead of running the model


@dataclass
class AsyncStats:
    """What the async workers did since start (or :meth:`AsyncEndpoints.reset_stats`)."""

    accepted: int = 0
    refused: int = 0
    completed: int = 0
    failed: int = 0
    notifications_published: int = 0
    notifications_dropped: int = 0
    worker_errors: list[str] = field(default_factory=list)


class AsyncEndpoints:
    """``specs`` (name → :class:`AsyncEndpointSpec`) served with the S3 and SNS clients given."""

    def __init__(
        self, specs: dict[str, AsyncEndpointSpec], faults: FaultInjector, *, s3: Any = None, sns: Any = None
    ) -> None:
        self.specs = specs
        self._faults = faults
        self._s3 = s3
        self._sns = sns
        self._queues: dict[str, queue.Queue[AsyncJob | None]] = {name: queue.Queue() for name in specs}
        self._workers: list[threading.Thread] = []
        self._pending = 0
        self._idle = threading.Condition()
        self._stopping = threading.Event()
        self.stats = AsyncStats()

    def start(self) -> None:
        for name, spec in self.specs.items():
            for index in range(spec.max_concurrent_invocations):
                worker = threading.Thread(
                    target=self._work, args=(self._queues[name],), name=f"local-sagemaker-async-{name}-{index}",
                    daemon=True,
                )  # fmt: skip
                worker.start()
                self._workers.append(worker)

    def stop(self) -> None:
        """Let the workers finish the invocation each holds and drop what is still queued."""
        self._stopping.set()
        for name, spec in self.specs.items():
            for _ in range(spec.max_concurrent_invocations):
                self._queues[name].put(None)
        for worker in self._workers:
            worker.join(timeout=5)
        self._workers.clear()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def reset_stats(self) -> None:
        self.stats = AsyncStats()

    def submit(self, endpoint: str, headers: Any, sync_endpoints: Container[str]) -> Reply | None:
        """One ``InvokeEndpointAsync`` (``headers``: the request's, any mapping with ``get``); None means: drop
        the connection. ``sync_endpoints`` name the endpoints that exist but are not asynchronous."""
        spec = self.specs.get(endpoint)
        if spec is None:
            if endpoint in sync_endpoints:
                return error_answer(
                    "ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} is not an asynchronous endpoint."
                )
            return endpoint_not_found(endpoint)
        input_location = headers.get("X-Amzn-SageMaker-InputLocation") or ""
        if not _is_object_uri(input_location):
            return error_answer("ValidationError", f"InputLocation {input_location!r} is not a valid S3 URI.")
        inference_id = headers.get("X-Amzn-SageMaker-Inference-Id") or str(uuid.uuid4())
        if len(inference_id) > INFERENCE_ID_MAX or not inference_id.isascii() or inference_id[0].isspace():
            return error_answer("ValidationError", f"InferenceId {inference_id!r} is not valid.")
        try:
            ttl = _bounded(headers, "X-Amzn-SageMaker-RequestTTLSeconds", "RequestTTLSeconds", REQUEST_TTL_S)
            timeout = _bounded(
                headers, "X-Amzn-SageMaker-InvocationTimeoutSeconds", "InvocationTimeoutSeconds", INVOCATION_TIMEOUT_S
            )
        except ValueError as error:
            return error_answer("ValidationError", str(error))

        active = self._faults.active_or_healthy(endpoint)
        fault = active.spec
        model_error_status: int | None = None
        code = self._faults.draw_error(active)
        if code is not None:
            if code != "ModelError":
                # Every error but a model's refuses the submit itself: nothing is queued or written.
                self._count("refused")
                return injected_error(endpoint, code, fault.model_status)
            model_error_status = fault.model_status
        # SageMaker names the objects with its own id, not the InferenceId: callers must use the returned locations.
        object_id = str(uuid.uuid4())
        job = AsyncJob(
            endpoint=endpoint,
            inference_id=inference_id,
            input_location=input_location,
            output_location=f"{spec.output_path}{object_id}.out",
            failure_location=f"{spec.failure_path}{object_id}-error.out",
            received=datetime.now(UTC),
            request_ttl_s=ttl,
            invocation_timeout_s=timeout,
            request={
                "contentType": headers.get("X-Amzn-SageMaker-Content-Type"),
                "accept": headers.get("X-Amzn-SageMaker-Accept"),
                "customAttributes": headers.get("X-Amzn-SageMaker-Custom-Attributes"),
            },
            latency_ms=active.draw_latency_ms(),
            model_error_status=model_error_status,
            drop_notification=self._faults.chance(fault.drop_notification_rate),
            answer=fault.answer_bytes,
        )
        with self._idle:
            self._pending += 1
            self.stats.accepted += 1
        self._queues[endpoint].put(job)
        body = json.dumps({"InferenceId": inference_id}).encode()
        return Answer(202, body), {
            "X-Amzn-SageMaker-OutputLocation": job.output_location,
            "X-Amzn-SageMaker-FailureLocation": job.failure_location,
        }

    def _work(self, jobs: queue.Queue[AsyncJob | None]) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            try:
                if not self._stopping.is_set():
                    self._run(job)
            except Exception as error:  # a broken emulator must not hang wait_idle: record and go on
                logger.exception("async invocation %s failed inside the local runtime", job.inference_id)
                with self._idle:
                    self.stats.worker_errors.append(f"{job.inference_id}: {type(error).__name__}: {error}")
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _count(self, name: str) -> None:
        with self._idle:
            setattr(self.stats, name, getattr(self.stats, name) + 1)

    def _run(self, job: AsyncJob) -> None:
        spec = self.specs[job.endpoint]
        waited_s = (datetime.now(UTC) - job.received).total_seconds()
        if waited_s > job.request_ttl_s:
            self._fail(job, spec, b"", f"ClientError: Request expired after waiting {waited_s:.0f} s in the queue.")
            return
        bucket, key = split_s3_uri(job.input_location)
        try:
            body: bytes = self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as error:
            reason = f"ClientError: Unable to read input from {job.input_location}: {error}"
            self._fail(job, spec, json.dumps({"error": reason}).encode(), reason)
            return
        if job.latency_ms:
            # A model slower than InvocationTimeoutSeconds is cut off at the timeout, as SageMaker does.
            time.sleep(min(job.latency_ms / 1000, job.invocation_timeout_s))
            if job.latency_ms / 1000 >= job.invocation_timeout_s:
                reason = f"ServerError: Model did not respond within {job.invocation_timeout_s} seconds."
                self._fail(job, spec, json.dumps({"error": reason}).encode(), reason)
                return
        if job.model_error_status is not None:
            answer = Answer(job.model_error_status, json.dumps({"error": "injected model failure"}).encode())
        elif job.answer is not None:
            answer = Answer(200, job.answer)
        else:
            answer = spec.service.invoke(body, custom_attributes=job.request["customAttributes"])
        if answer.status >= 400:
            kind = "client" if answer.status < 500 else "server"
            message = answer.body.decode("utf-8", "replace")
            reason = (
                f'ClientError: Received {kind} error ({answer.status}) from model with message "{message}". '
                f"See https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}#logEventViewer:"
                f"group=/aws/sagemaker/Endpoints/{job.endpoint} in account {ACCOUNT_ID} for more information."
            )
            self._fail(job, spec, answer.body, reason)
            return
        out_bucket, out_key = split_s3_uri(job.output_location)
        self._s3.put_object(Bucket=out_bucket, Key=out_key, Body=answer.body, ContentType=answer.content_type)
        self._count("completed")
        response = {"contentType": answer.content_type, "outputLocation": job.output_location}
        self._notify(job, spec.success_topic_arn, "Completed", response)

    def _fail(self, job: AsyncJob, spec: AsyncEndpointSpec, body: bytes, reason: str) -> None:
        bucket, key = split_s3_uri(job.failure_location)
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        self._count("failed")
        response = {"contentType": "application/json", "failureLocation": job.failure_location}
        self._notify(job, spec.error_topic_arn, "Failed", response, reason)

    def _notify(
        self, job: AsyncJob, topic_arn: str | None, status: str, response: dict[str, str], reason: str | None = None
    ) -> None:
        if topic_arn is None:
            return
        if job.drop_notification:
            self._count("notifications_dropped")
            return
        notification = inference_result(
            endpoint=job.endpoint,
            inference_id=job.inference_id,
            input_location=job.input_location,
            received=job.received,
            request=job.request,
            status=status,
            response=response,
            failure_reason=reason,
        )
        self._sns.publish(TopicArn=topic_arn, Message=json.dumps(notification))
        self._count("notifications_published")


def _is_object_uri(uri: str) -> bool:
    """Whether ``uri`` names an S3 object: ``s3://bucket/key`` with neither part empty."""
    try:
        bucket, key = split_s3_uri(uri)
    except ValueError:
        return False
    return bool(bucket) and bool(key)


def _bounded(headers: Any, header: str, name: str, bounds: tuple[int, int, int]) -> int:
    low, high, default = bounds
    raw = headers.get(header)
    if raw is None:
        return default
    if not str(raw).isdigit() or not low <= int(raw) <= high:
        raise ValueError(f"{name} {raw!r} must be a whole number from {low} to {high}.")
    return int(raw)
