"""The caller policy through the router handler, against the local SageMaker runtime: a refused caller gets a
403 naming the model before its body is read; an allowed caller goes on as before; a caller allowed only one
mode gets that mode (its other-mode preference ignored, no spill into a mode it lacks). The async path here is
a recording double of the async port: what matters is whether a submit happens, not how."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings
from functions.config.caller_policy import CallerPolicy, parse_caller_policy
from functions.config.config_reader import ConfigReader
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.model_variants import write_models_with_variants
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from tests.helpers.async_doubles import RecordingAsyncJobs
from tests.helpers.events import HandlerAnswer, answer_of

ACCOUNT = "123456789012"
KEY_ID = "a1b2c3d4e5"
RULES = [
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/ranker", "models": {"iris": ["sync"], "iris-gpu": ["sync"]}},
    {"principal": f"arn:aws:iam::{ACCOUNT}:role/batch-*", "models": {"iris": ["async"], "iris-gpu": ["async"]}},
    {"api_key_id": KEY_ID, "models": {"*": ["sync", "async"]}},
]
VALID = {"id": "q1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
INVALID = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT8", "data": [1, 2, 3]}], "extra": True}


def role(name: str, session: str = "i-0abc") -> dict[str, Any]:
    return {"userArn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{session}"}


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    fast = {"retry": {"max_attempts": 1, "base_delay_ms": 5, "max_delay_ms": 5}, "spill_async": True}
    return write_models_with_variants(
        tmp_path_factory.mktemp("policy"),
        {"iris": {"resilience": fast}, "iris-gpu": {"route": {"sync": None, "async_endpoint": "iris-gpu"}}},
    )


@pytest.fixture
def jobs() -> RecordingAsyncJobs:
    return RecordingAsyncJobs()


def router_with(
    config: Path, backend: SageMakerBackend, jobs: RecordingAsyncJobs, policy: CallerPolicy | None
) -> RouterApp:
    settings = RouterSettings(models_config_path=str(config), caller_policy=policy)
    clients = RouterClients(backend, async_jobs=lambda *_: jobs)
    return create_app(settings, AsyncSettings(bucket="jobs", job_table="jobs"), clients)


@pytest.fixture
def router(config_path: Path, sagemaker_backend: SageMakerBackend, jobs: RecordingAsyncJobs) -> RouterApp:
    return router_with(config_path, sagemaker_backend, jobs, parse_caller_policy(RULES, ConfigReader("test").fail))


@pytest.fixture(autouse=True)
def clean(local_runtime: LocalSageMakerRuntime) -> Iterator[None]:
    local_runtime.clear_faults()
    yield
    local_runtime.clear_faults()


def infer(
    router: RouterApp, model: str, identity: dict[str, Any], body: Any = VALID, headers: dict[str, str] | None = None
) -> HandlerAnswer:
    encoded = json.dumps(body).encode()
    event = build_rest_event(
        "POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json", **(headers or {})}, encoded
    )
    assert event is not None
    event["requestContext"]["identity"].update(identity)
    return answer_of(router(event, LocalLambdaContext(timeout_ms=28_000)))


def test_a_refused_caller_gets_403_before_its_invalid_body_is_read(router: RouterApp) -> None:
    refused = infer(router, "iris", role("scorer"), INVALID)
    assert refused.status == 403
    assert refused.body == {"error": "this caller may not call model 'iris' (caller policy)"}
    assert infer(router, "iris", role("ranker"), INVALID).status == 400  # an allowed caller learns what is wrong


def test_a_refused_caller_gets_403_for_a_model_that_does_not_exist(router: RouterApp) -> None:
    assert infer(router, "no-such-model", role("scorer")).status == 403  # not 404: existence is not revealed
    assert infer(router, "no-such-model", {"apiKeyId": KEY_ID}).status == 404  # "*": every model, so 404


def test_a_caller_without_any_identity_is_refused_under_a_policy(router: RouterApp) -> None:
    assert infer(router, "iris", {}).status == 403


def test_an_allowed_role_is_answered_whatever_its_session(router: RouterApp, jobs: RecordingAsyncJobs) -> None:
    for session in ("i-0abc", "i-0abc-refreshed"):
        answer = infer(router, "iris", role("ranker", session))
        assert answer.status == 200
        assert answer.body["id"] == "q1"
    assert jobs.submitted == []


def test_a_sync_only_caller_preferring_async_is_answered_synchronously(
    router: RouterApp, jobs: RecordingAsyncJobs
) -> None:
    answer = infer(router, "iris", role("ranker"), headers={"Prefer": "respond-async"})
    assert answer.status == 200
    assert "Preference-Applied" not in answer.headers
    assert jobs.submitted == []


def test_an_async_only_caller_is_refused_sync_and_submitted_async(router: RouterApp, jobs: RecordingAsyncJobs) -> None:
    refused = infer(router, "iris", role("batch-nightly"), INVALID)
    assert refused.status == 403
    assert refused.body == {"error": "this caller may not call model 'iris' synchronously (caller policy)"}
    accepted = infer(router, "iris", role("batch-nightly"), headers={"Prefer": "respond-async"})
    assert accepted.status == 202
    assert accepted.headers["Preference-Applied"] == "respond-async"
    assert infer(router, "iris-gpu", role("batch-nightly")).status == 202
    assert jobs.submitted == ["iris", "iris-gpu"]


def test_a_sync_only_caller_is_refused_an_async_only_model(router: RouterApp, jobs: RecordingAsyncJobs) -> None:
    refused = infer(router, "iris-gpu", role("ranker"))
    assert refused.status == 403
    assert refused.body == {"error": "this caller may not call model 'iris-gpu' asynchronously (caller policy)"}
    assert jobs.submitted == []


def test_a_failed_sync_call_spills_to_async_only_for_a_caller_allowed_async(
    router: RouterApp, jobs: RecordingAsyncJobs, local_runtime: LocalSageMakerRuntime
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelNotReadyException", error_rate=1.0))
    assert infer(router, "iris", role("ranker")).status == 503  # sync only: the sync error is the answer
    assert jobs.submitted == []
    spilled = infer(router, "iris", {"apiKeyId": KEY_ID})
    assert spilled.status == 202
    assert jobs.submitted == ["iris"]


def test_an_iam_caller_with_an_api_key_gets_its_keys_permissions_too(router: RouterApp) -> None:
    assert infer(router, "iris-gpu", {**role("ranker"), "apiKeyId": KEY_ID}).status == 202


def test_without_a_policy_every_caller_may_call_every_model(
    config_path: Path, sagemaker_backend: SageMakerBackend, jobs: RecordingAsyncJobs
) -> None:
    open_router = router_with(config_path, sagemaker_backend, jobs, None)
    assert infer(open_router, "iris", {}).status == 200
    assert infer(open_router, "iris", role("scorer"), INVALID).status == 400
    assert infer(open_router, "iris-gpu", role("scorer")).status == 202


def test_a_body_too_large_for_sync_is_refused_to_a_sync_only_caller(
    router: RouterApp, jobs: RecordingAsyncJobs
) -> None:
    large = {**VALID, "id": "x" * (1024 * 1024)}  # over iris's 1 MiB sync limit: only the async path takes it
    refused = infer(router, "iris", role("ranker"), large)
    assert refused.status == 403
    assert "asynchronously" in refused.body["error"]
    assert infer(router, "iris", {"apiKeyId": KEY_ID}, large).status == 202
    assert jobs.submitted == ["iris"]
