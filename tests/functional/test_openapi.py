"""docs/openapi.json: generated from the router's resolver (python -m local.openapi) and kept in step."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openapi_spec_validator import validate

from bench.fuzz import DOCUMENT, WEIGHTS
from functions.config import api_routes as api
from functions.domain.errors import ResultExpiredError
from functions.domain.job_records import JOB_ID_PATTERN, OPEN_STATUSES, TERMINAL_STATUSES
from functions.handlers.router.responses import STATUS_BY_ERROR
from local.openapi import DOCUMENT_PATH, generate, render

GATEWAY_STATUSES = {"403", "429"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return generate()


def test_committed_openapi_document_equals_a_fresh_generation(document: dict[str, Any]) -> None:
    assert DOCUMENT_PATH.read_text() == render(document), "docs/openapi.json is stale: run `python -m local.openapi`"


def test_openapi_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(json.loads(render(document)))


def test_openapi_document_has_every_route_and_no_other(document: dict[str, Any]) -> None:
    operations = {(method.upper(), path) for path, methods in document["paths"].items() for method in methods}
    assert operations == {(route.method, route.resource) for route in api.ROUTES}


def test_openapi_document_never_promises_a_500(document: dict[str, Any]) -> None:
    for methods in document["paths"].values():
        for operation in methods.values():
            assert "500" not in operation["responses"]


def test_openapi_infer_lists_every_status_the_router_maps_errors_to(document: dict[str, Any]) -> None:
    infer = document["paths"][api.MODEL_INFER.resource]["post"]
    job_status_only = {str(STATUS_BY_ERROR[ResultExpiredError])}  # an expired result: GET /v2/jobs/{id} only
    assert set(infer["responses"]) == (
        {"200", "202"} | {str(s) for s in STATUS_BY_ERROR.values()} - job_status_only | GATEWAY_STATUSES
    )
    assert infer["responses"]["202"]["headers"]["Location"]["required"] is True
    assert infer["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    assert infer["responses"]["409"]["headers"]["Retry-After"]["required"] is True
    assert {parameter["name"] for parameter in infer["parameters"]} == {"model", "Prefer", "Idempotency-Key"}


def test_openapi_infer_request_body_is_the_one_infer_request_schema(document: dict[str, Any]) -> None:
    infer = document["paths"][api.MODEL_INFER.resource]["post"]
    assert infer["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/InferRequest"
    }
    assert document["components"]["schemas"]["InferRequest"] == api.INFER_REQUEST_SCHEMA


def test_openapi_infer_example_is_accepted_by_the_router(document: dict[str, Any], call_router: Any) -> None:
    from local.api_gateway import build_rest_event

    infer = document["paths"][api.MODEL_INFER.resource]["post"]
    model = next(p["example"] for p in infer["parameters"] if p["name"] == "model")
    body = json.dumps(infer["requestBody"]["content"]["application/json"]["example"]).encode()
    event = build_rest_event("POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, body)
    assert event is not None
    assert call_router(event).status == 200


def test_openapi_job_status_lists_its_errors_and_the_job_id_format(document: dict[str, Any]) -> None:
    status = document["paths"][api.JOB_STATUS.resource]["get"]
    assert set(status["responses"]) == {"200", "400", "404", "410", "503"} | GATEWAY_STATUSES
    assert status["responses"]["503"]["headers"]["Retry-After"]["required"] is True
    (job_id,) = (p for p in status["parameters"] if p["name"] == "job_id")
    assert job_id["schema"]["pattern"] == JOB_ID_PATTERN.pattern


def test_openapi_job_statuses_are_the_ones_a_caller_can_see(document: dict[str, Any]) -> None:
    # "submitting" shows as "queued"; "running" is never reported (SageMaker async gives no start signal).
    public = {"queued" if s == "submitting" else s for s in (*OPEN_STATUSES, *TERMINAL_STATUSES)}
    assert set(document["components"]["schemas"]["Job"]["properties"]["status"]["enum"]) == public


def test_openapi_every_operation_lists_api_gateways_own_answers(document: dict[str, Any]) -> None:
    # 403 (authentication) and 429 (stage throttle, usage-plan quota) come from API Gateway, before the router.
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            assert set(operation["responses"]) >= GATEWAY_STATUSES, (method, path)
            assert "Retry-After" in operation["responses"]["429"]["headers"], (method, path)


@pytest.mark.parametrize(
    ("versioned", "unversioned"),
    [
        (api.MODEL_VERSION_METADATA, api.MODEL_METADATA),
        (api.MODEL_VERSION_READY, api.MODEL_READY),
        (api.MODEL_VERSION_INFER, api.MODEL_INFER),
    ],
)
def test_openapi_version_routes_answer_as_their_unversioned_routes(
    document: dict[str, Any], versioned: api.ApiRoute, unversioned: api.ApiRoute
) -> None:
    pinned = document["paths"][versioned.resource][versioned.method.lower()]
    plain = document["paths"][unversioned.resource][unversioned.method.lower()]
    assert pinned["responses"] == plain["responses"]
    assert pinned.get("requestBody") == plain.get("requestBody")
    (version,) = (p for p in pinned["parameters"] if p["name"] == "version")
    assert (version["in"], version["required"], version["schema"]["type"]) == ("path", True, "string")
    names = {p["name"] for p in pinned["parameters"]}
    assert names == {p["name"] for p in plain["parameters"]} | {"version"}


def test_the_fuzz_run_weighs_every_documented_operation() -> None:
    paths = json.loads(DOCUMENT.read_text())["paths"]
    documented = {f"{method.upper()} {path}" for path, methods in paths.items() for method in methods}
    assert set(WEIGHTS) == documented
