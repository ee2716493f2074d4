"""Every SageMaker runtime error, injected in the local runtime and reaching the router through real boto3,
answers with the status design.md documents."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from local.sagemaker_runtime import DROP_CONNECTION, FaultSpec, LocalSageMakerRuntime
from tests.conftest import load_event

# (fault, model status for ModelError, expected status, Retry-After expected, message fragment)
MAPPINGS = [
    ("ValidationError", 500, 502, False, "rejected the request (ValidationError)"),
    ("ModelError", 400, 400, False, "failed (400)"),
    ("ModelError", 404, 422, False, "failed (404)"),
    ("ModelError", 500, 502, False, "failed (500)"),
    ("ModelNotReadyException", 500, 503, True, "unavailable (ModelNotReadyException)"),
    ("ThrottlingException", 500, 503, True, "unavailable (ThrottlingException)"),
    ("InternalFailure", 500, 503, True, "unavailable (InternalFailure)"),
    ("ServiceUnavailable", 500, 503, True, "unavailable (ServiceUnavailable)"),
    ("InternalDependencyException", 500, 503, True, "unavailable (InternalDependencyException)"),
    (DROP_CONNECTION, 500, 503, True, "could not be reached"),
]


@pytest.mark.parametrize(("error", "model_status", "status", "retry_after", "message"), MAPPINGS,
                         ids=[f"{m[0]}-{m[1]}" for m in MAPPINGS])  # fmt: skip
def test_sagemaker_error_maps_to_documented_status(
    runtime: LocalSageMakerRuntime,
    call_router: Any,
    error: str,
    model_status: int,
    status: int,
    retry_after: bool,
    message: str,
) -> None:
    runtime.set_fault("iris", FaultSpec(error=error, model_status=model_status))
    answer = call_router(load_event("apigw_infer_valid"))
    assert answer.status == status
    assert message in answer.body["error"]
    assert ("Retry-After" in answer.headers) is retry_after


def test_model_error_message_is_the_models_own(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="ModelError", model_status=400))
    assert "injected model failure" in call_router(load_event("apigw_infer_valid")).body["error"]


def test_read_timeout_past_the_deadline_is_504(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(latency_ms=1500))
    answer = call_router(load_event("apigw_infer_valid"), timeout_ms=1000)
    assert answer.status == 504
    assert "did not answer within 500 ms" in answer.body["error"]


def test_no_time_left_is_504_without_calling(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="InternalFailure"))
    answer = call_router(load_event("apigw_infer_valid"), timeout_ms=200)
    assert answer.status == 504
    assert "no time left to call the model" in answer.body["error"]


def test_unknown_endpoint_is_502_naming_it(runtime: LocalSageMakerRuntime, router_module: Any, call_router: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setattr(
        router_module, "router", dataclasses.replace(router_module.router, endpoint_name_prefix="missing-")
    )
    answer = call_router(load_event("apigw_infer_valid"))
    assert answer.status == 502
    assert "Endpoint missing-iris of account 123456789012 not found." in answer.body["error"]


def test_partial_error_rate_fails_only_some_calls(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=0.5))
    statuses = {call_router(load_event("apigw_infer_valid")).status for _ in range(20)}
    assert statuses == {200, 503}
