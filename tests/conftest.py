"""Fixtures shared by the functional and end-to-end tests: a local SageMaker runtime serving the real
iris model, router apps built (``create_app``) only after boto3 is pointed at it, and one AWS emulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext
from local.aws import LocalAws
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import LOCAL_AWS_ENVIRONMENT, serverless_endpoints
from tests.helpers.events import HandlerAnswer, answer_of


@pytest.fixture(scope="session")
def aws() -> Iterator[LocalAws]:
    """One moto server for the session; each module creates its own uniquely named resources on it."""
    server = LocalAws().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def local_runtime() -> Iterator[LocalSageMakerRuntime]:
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config())).start()
    urls = ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_SAGEMAKER"]  # invocations, DescribeEndpoint
    saved = {name: os.environ.get(name) for name in [*LOCAL_AWS_ENVIRONMENT, *urls]}
    os.environ.update(LOCAL_AWS_ENVIRONMENT)
    os.environ.update(dict.fromkeys(urls, runtime.url))
    yield runtime
    runtime.stop()
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def runtime(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalSageMakerRuntime]:
    """The shared runtime, with any fault a test sets cleared afterwards."""
    local_runtime.seed(7)
    yield local_runtime
    local_runtime.clear_faults()


@pytest.fixture(scope="session")
def sagemaker_backend(local_runtime: LocalSageMakerRuntime) -> SageMakerBackend:
    """The SageMaker adapter, its clients made after boto3 points at this session's runtime."""
    return SageMakerBackend()


@pytest.fixture
def router_app(sagemaker_backend: SageMakerBackend) -> RouterApp:
    """A sync-only router (the default models.json, no async settings): each test a fresh environment, every
    circuit closed, nothing cached."""
    return create_app(RouterSettings(), None, RouterClients(sagemaker_backend))


@pytest.fixture
def call_router(router_app: RouterApp, runtime: LocalSageMakerRuntime) -> Any:
    def call(event: dict[str, Any], *, timeout_ms: int = 28_000) -> HandlerAnswer:
        return answer_of(router_app(event, LocalLambdaContext(timeout_ms=timeout_ms)))

    return call
