"""The version routes (``/v2/models/{model}/versions/{version}/...``) and the body's ``model_name`` /
``model_version``, through the router handler with the real iris model behind it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.async_settings import AsyncSettings
from functions.config.caller_policy import CallerPolicy, parse_caller_policy
from functions.config.config_reader import ConfigReader
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from tests.helpers.async_doubles import RecordingAsyncJobs
from tests.helpers.events import answer_of, load_event

ROW = [5.1, 3.5, 1.4, 0.2]
INFER: dict[str, Any] = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
# What the kserve SDK 0.21.0 sends for InferRequest(model_name="iris", infer_inputs=[...]) (its
# InferRequest.to_rest(): "id" is a uuid4 when none is given, "model_name" always, never "model_version").
KSERVE_TO_REST: dict[str, Any] = {
    "id": "6f1c2b9e-8a41-4c1e-9a57-0d3c2f7e1b64",
    "model_name": "iris",
    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}],
}


def event(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    raw = json.dumps(body).encode() if body is not None else b""
    built = build_rest_event(method, path, {"Content-Type": "application/json"}, raw)
    assert built is not None, f"no resource for {method} {path}"
    return built


def test_version_metadata_is_the_model_metadata(call_router: Any) -> None:
    versioned = call_router(event("GET", "/v2/models/iris/versions/1"))
    assert (versioned.status, versioned.body) == (200, call_router(load_event("apigw_model_metadata")).body)
    assert versioned.body["versions"] == ["1"]


def test_version_ready_answers_as_the_model_ready_route(call_router: Any) -> None:
    versioned = call_router(event("GET", "/v2/models/iris/versions/1/ready"))
    assert (versioned.status, versioned.body) == (200, call_router(event("GET", "/v2/models/iris/ready")).body)


def test_version_infer_answers_with_that_model_version(call_router: Any) -> None:
    answer = call_router(event("POST", "/v2/models/iris/versions/1/infer", {**INFER, "id": "v1"}))
    assert answer.status == 200
    assert (answer.body["model_name"], answer.body["model_version"], answer.body["id"]) == ("iris", "1", "v1")
    unversioned = call_router(event("POST", "/v2/models/iris/infer", {**INFER, "id": "v1"}))
    assert answer.body == unversioned.body


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v2/models/iris/versions/7", None),
        ("GET", "/v2/models/iris/versions/7/ready", None),
        ("POST", "/v2/models/iris/versions/7/infer", INFER),
    ],
)
def test_unknown_version_is_404_naming_the_versions_that_exist(
    call_router: Any, method: str, path: str, body: dict[str, Any] | None
) -> None:
    answer = call_router(event(method, path, body))
    assert (answer.status, answer.body) == (404, {"error": "model 'iris' has no version '7' (versions: '1')"})


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v2/models/nope/versions/1"), ("GET", "/v2/models/nope/versions/1/ready"),
     ("POST", "/v2/models/nope/versions/1/infer")],
)  # fmt: skip
def test_unknown_model_on_a_version_route_is_404(call_router: Any, method: str, path: str) -> None:
    answer = call_router(event(method, path, INFER if method == "POST" else None))
    assert (answer.status, answer.body) == (404, {"error": "model 'nope' is not served here"})


def test_unknown_version_is_404_before_the_body_is_read(call_router: Any) -> None:
    answer = call_router(event("POST", "/v2/models/iris/versions/7/infer", {"inputs": "not a list"}))
    assert answer.status == 404


@pytest.mark.parametrize("path", ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"])
def test_the_kserve_sdk_body_is_answered(call_router: Any, path: str) -> None:
    answer = call_router(event("POST", path, KSERVE_TO_REST))
    assert answer.status == 200
    assert (answer.body["model_name"], answer.body["id"]) == ("iris", KSERVE_TO_REST["id"])
    assert {output["name"]: output["data"] for output in answer.body["outputs"]}["label"] == [0]


@pytest.mark.parametrize(
    ("path", "fields"),
    [
        ("/v2/models/iris/infer", {"model_name": "iris", "model_version": "1"}),
        ("/v2/models/iris/versions/1/infer", {"model_name": "iris", "model_version": "1"}),
        ("/v2/models/iris/versions/1/infer", {"model_version": "1"}),
    ],
)
def test_model_name_and_version_that_agree_with_the_path_are_accepted(
    call_router: Any, path: str, fields: dict[str, str]
) -> None:
    answer = call_router(event("POST", path, {**INFER, **fields}))
    assert (answer.status, answer.body["model_version"]) == (200, "1")


@pytest.mark.parametrize(
    ("path", "fields", "message"),
    [
        ("/v2/models/iris/infer", {"model_name": "other"},
         "model_name 'other' in the body contradicts the path's model 'iris'"),
        ("/v2/models/iris/versions/1/infer", {"model_name": "IRIS", "model_version": "1"},
         "model_name 'IRIS' in the body contradicts the path's model 'iris'"),
        ("/v2/models/iris/versions/1/infer", {"model_version": "2"},
         "model_version '2' in the body contradicts the path's version '1'"),
        ("/v2/models/iris/infer", {"model_version": "2"},
         "model_version '2' in the body is not a version of model 'iris' (versions: '1')"),
        ("/v2/models/iris/infer", {"model_name": 7}, "'model_name' must be a string, got a number"),
        ("/v2/models/iris/infer", {"model_version": 1}, "'model_version' must be a string, got a number"),
        ("/v2/models/iris/infer", {"model": "iris"}, "unknown request field 'model' (allowed: id, model_name, model_version, parameters, inputs, outputs)"),
    ],
)  # fmt: skip
def test_model_name_or_version_against_the_path_is_400_naming_both(
    call_router: Any, path: str, fields: dict[str, Any], message: str
) -> None:
    answer = call_router(event("POST", path, {**INFER, **fields}))
    assert (answer.status, answer.body) == (400, {"error": message})


def async_router(backend: SageMakerBackend, jobs: RecordingAsyncJobs, policy: CallerPolicy | None = None) -> RouterApp:
    settings = RouterSettings(caller_policy=policy)
    return create_app(
        settings, AsyncSettings(bucket="jobs", job_table="jobs"), RouterClients(backend, async_jobs=lambda *_: jobs)
    )


def test_the_async_path_checks_model_name_and_version_too(sagemaker_backend: SageMakerBackend) -> None:
    jobs = RecordingAsyncJobs()
    router = async_router(sagemaker_backend, jobs)
    refused = event("POST", "/v2/models/iris/versions/1/infer", {**INFER, "model_version": "2"})
    refused["headers"]["Prefer"] = "respond-async"
    answer = answer_of(router(refused, LocalLambdaContext()))
    assert (answer.status, answer.body) == (
        400,
        {"error": "model_version '2' in the body contradicts the path's version '1'"},
    )
    accepted = event("POST", "/v2/models/iris/versions/1/infer", {**INFER, "model_name": "iris"})
    accepted["headers"]["Prefer"] = "respond-async"
    assert answer_of(router(accepted, LocalLambdaContext())).status == 202
    assert jobs.submitted == ["iris"]


def test_a_refused_caller_learns_nothing_of_versions(sagemaker_backend: SageMakerBackend) -> None:
    rules = [{"principal": "arn:aws:iam::123456789012:role/ranker", "models": {"iris": ["sync"]}}]
    router = async_router(
        sagemaker_backend, RecordingAsyncJobs(), parse_caller_policy(rules, ConfigReader("test").fail)
    )
    answer = answer_of(router(event("POST", "/v2/models/iris/versions/7/infer", INFER), LocalLambdaContext()))
    assert answer.status == 403  # not the unknown version's 404
