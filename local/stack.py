"""The whole system on one machine: the local SageMaker runtime serving every configured endpoint and the
local API in front of the router handler, wired the way the deployed stack wires them."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from functions.adapters import aws_clients
from functions.adapters.async_service import async_service_from_env
from functions.adapters.onnx_model import OnnxModel
from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings
from functions.config.model_types import ModelsConfig
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings
from functions.domain.async_jobs import AsyncJobService
from functions.domain.shadow import ShadowRunner
from functions.handlers.results.app import create_handler as create_results_handler
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from functions.handlers.shadow.app import timeout_ms as shadow_timeout_ms
from functions.handlers.sweeper.app import create_handler as create_sweeper_handler
from local.account import FAKE_CREDENTIALS, REGION
from local.api_gateway import LocalApiGateway
from local.async_endpoints import async_endpoint_specs
from local.aws import (
    AsyncResources,
    LocalAsyncResources,
    LocalAws,
    aws_client,
    create_async_resources,
    local_environment,
)
from local.capture import LocalCaptureWriter
from local.log_subscriptions import LocalLogSubscriptions
from local.result_poller import ResultPoller, SweeperLoop
from local.sagemaker_runtime import LocalSageMakerRuntime
from serving.batching import BatchingSettings
from serving.service import InvocationService

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
# Fake credentials: local mode must never reach a real AWS account, whatever the shell has set.
LOCAL_AWS_ENVIRONMENT: Final[dict[str, str]] = {
    **{name.upper(): value for name, value in FAKE_CREDENTIALS.items()},
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# The router's settings in local mode: every request of a capturing model is captured (iris), so a short local
# run gives the drift CLI enough to read; a model without a capture block still captures nothing.
LOCAL_ROUTER_ENVIRONMENT: Final[dict[str, str]] = {"CAPTURE_SAMPLE_RATE": "1"}


def serverless_endpoints(config: ModelsConfig, intra_op_threads: int = 1) -> dict[str, InvocationService]:
    """One serving container per serverless endpoint of every model version in the config, running the version's
    artifact (answering its ``model_version``) and batching as the model's ``batching`` block says (as the
    deployed container's environment does)."""
    endpoints: dict[str, InvocationService] = {}
    for model in (config_model.for_version(entry) for config_model in config.models for entry in config_model.versions):
        if model.route.serverless_endpoint is None:
            continue
        if model.artifact is None:
            raise ValueError(
                f"{config.source}: model {model.name!r} has a serverless route but no artifact to serve locally"
            )
        onnx_model = OnnxModel(model, REPO_ROOT / model.artifact, intra_op_threads=intra_op_threads)
        batching = BatchingSettings.from_config(model.batching)
        endpoints[model.route.serverless_endpoint] = InvocationService(onnx_model, batching=batching)
    return endpoints


def router_from_env(sink: Callable[[str], None] = print) -> RouterApp:
    """A router app as a new Lambda environment would build it: settings read from the environment now, and
    the project's boto3 clients made anew (they hold the endpoint URLs of when they were made). ``sink``
    takes its log lines and EMF documents (the local log subscriptions)."""
    aws_clients.reset_clients()
    clients = RouterClients(SageMakerBackend(), log_sink=sink, metrics_sink=sink)
    return create_app(RouterSettings.from_env(), AsyncSettings.from_env(), clients)


def shadow_runner(config: ModelsConfig) -> ShadowRunner | None:
    """The shadow worker's runner against the local runtime, when some model has a shadow version."""
    if not any(model.shadows for model in config.models):
        return None
    prefix = os.environ.get("ENDPOINT_NAME_PREFIX", "")
    return ShadowRunner(config, prefix, SageMakerBackend(), shadow_timeout_ms())


def job_service_from_env() -> AsyncJobService:
    """The results' and sweeper's job service from the environment now (the local async resources)."""
    aws_clients.reset_clients()
    return async_service_from_env("local stack")


@dataclass
class LocalStack:
    runtime: LocalSageMakerRuntime
    api: LocalApiGateway
    router: RouterApp
    aws: LocalAws | None = None
    resources: AsyncResources | None = None
    result_poller: ResultPoller | None = None
    sweeper: SweeperLoop | None = None
    owns_runtime: bool = True
    saved_environment: dict[str, str] | None = None
    job_service: AsyncJobService | None = None  # what the result poller and the sweeper settle jobs with
    subscriptions: LocalLogSubscriptions | None = None  # the router's log sink: EMF file, shadow worker

    def fresh_router(self) -> RouterApp:
        """Serve a new router environment (every circuit closed, nothing cached) from now on."""
        self.router = router_from_env(self.subscriptions or print)
        self.api.handler = self.router
        return self.router

    def environment(self) -> dict[str, str]:
        """What an operator command needs to reach this stack (``python -m ops``)."""
        names = [
            *LOCAL_AWS_ENVIRONMENT,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
            "AWS_ENDPOINT_URL_SAGEMAKER",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ENDPOINT_URL_SQS",
            "AWS_ENDPOINT_URL_SNS",
            "AWS_ENDPOINT_URL_DYNAMODB",
            "ASYNC_BUCKET",
            "JOB_TABLE",
            "IDEMPOTENCY_TABLE",
            "RESULT_QUEUE_URL",
            "DEAD_LETTER_QUEUE_URL",
        ]
        return {name: os.environ[name] for name in names if name in os.environ}

    def stop(self) -> None:
        if self.subscriptions is not None:
            self.subscriptions.stop()
        if self.sweeper is not None:
            self.sweeper.stop()
        if self.result_poller is not None:
            self.result_poller.stop()
        self.api.stop()
        if self.owns_runtime:
            self.runtime.stop()
        if self.aws is not None:
            self.aws.stop()
        if self.saved_environment is not None:
            # The process outlives the stack (tests): leave the environment as it was found.
            os.environ.clear()
            os.environ.update(self.saved_environment)


@dataclass(frozen=True)
class AsyncOptions:
    """How the local async path is sized; short timings make retries and redrives visible in seconds."""

    visibility_timeout_s: int = 5
    max_receive_count: int = 3
    sweep_interval_s: float = 30.0
    max_concurrent_invocations: int = 4


def start_local_stack(
    *,
    api_port: int = 3000,
    runtime_port: int = 0,
    config_path: str | None = None,
    runtime: LocalSageMakerRuntime | None = None,
    async_options: AsyncOptions | None = AsyncOptions(),
    metrics_path: Path | None = None,
    capture_dir: Path | None = None,
) -> LocalStack:
    """Start the AWS emulator and the async resources (unless ``async_options`` is None), the SageMaker
    runtime (unless one is given), the API, the result poller and the sweeper, in background threads.

    The functions are built (their factories) after the environment points boto3 at the emulators, as the
    Lambda runtime would configure them. ``metrics_path``: where the router's and the shadow worker's EMF
    documents are appended (``python -m local`` passes local/log_subscriptions.py ``local_metrics_path()``);
    ``capture_dir``: the root of the capture lines' ``capture/model=<m>/date=<d>/`` files (``python -m local``
    passes local/capture.py ``local_capture_dir()``; None: printed only).
    """
    saved_environment = dict(os.environ)
    os.environ.update(LOCAL_AWS_ENVIRONMENT)
    os.environ.update(LOCAL_ROUTER_ENVIRONMENT)
    config = load_models_config(config_path)
    aws: LocalAws | None = None
    resources: AsyncResources | None = None
    if async_options is not None:
        aws = LocalAws().start()
        resources = create_async_resources(
            aws.url,
            LocalAsyncResources.unique(
                "local",
                max_receive_count=async_options.max_receive_count,
                visibility_timeout_s=async_options.visibility_timeout_s,
            ),
        )
        os.environ.update(local_environment(resources, aws.url))
    owns_runtime = runtime is None
    if runtime is None:
        async_endpoints = (
            async_endpoint_specs(config, resources, max_concurrent_invocations=async_options.max_concurrent_invocations)
            if resources is not None and async_options is not None
            else None
        )
        runtime = LocalSageMakerRuntime(
            serverless_endpoints(config),
            port=runtime_port,
            async_endpoints=async_endpoints,
            aws_endpoint_url=aws.url if aws is not None else None,
        ).start()
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime.url
    # The same runtime answers the control plane's DescribeEndpoint (the ready routes' endpoint status).
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = runtime.url
    if config_path is not None:
        os.environ["MODELS_CONFIG_PATH"] = config_path
    capture = LocalCaptureWriter(capture_dir) if capture_dir is not None else None
    subscriptions = LocalLogSubscriptions(shadow_runner(config), metrics_path, capture=capture)
    router = router_from_env(subscriptions)
    api = LocalApiGateway(router, port=api_port).start()
    poller: ResultPoller | None = None
    sweeper: SweeperLoop | None = None
    service: AsyncJobService | None = None
    if aws is not None and resources is not None and async_options is not None:
        service = job_service_from_env()
        poller = ResultPoller(
            service,
            create_results_handler,
            aws_client("sqs", aws.url),
            resources.result_queue_url,
            resources.result_queue_arn,
        ).start()
        sweeper = SweeperLoop(create_sweeper_handler(service), async_options.sweep_interval_s).start()
    return LocalStack(
        runtime,
        api,
        router,
        aws,
        resources,
        poller,
        sweeper,
        owns_runtime,
        saved_environment,
        job_service=service,
        subscriptions=subscriptions,
    )
