"""The router's pre-traffic hook: it invokes the new version with every smoke request and reports Succeeded
only when every answer is 2xx (CodeDeploy stubbed with botocore's Stubber, the router a fake Lambda client)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from functions.config.models import load_models_config
from functions.domain.smoke_requests import smoke_requests
from functions.handlers.deploy_hook.app import create_handler, rest_event
from local.api_gateway import build_rest_event

CONFIG = load_models_config()
EVENT = {"DeploymentId": "d-ABCDEF123", "LifecycleEventHookExecutionId": "hook-execution-1"}
HOOK_ROLE = "arn:aws:iam::123456789012:role/router-deploy-hook"


class FakeRouter:
    """The new router version: answers each event with ``answer(event)``; records what it was sent."""

    def __init__(self, answer: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def invoke(self, *, FunctionName: str, Qualifier: str, Payload: bytes) -> dict[str, Any]:  # noqa: N803
        event = json.loads(Payload)
        self.calls.append((FunctionName, Qualifier, event))
        result = self.answer(event)
        if "error" in result:
            raise result["error"]
        body = json.dumps(result.get("payload", {})).encode()
        return {"StatusCode": 200, "Payload": io.BytesIO(body), **result.get("extra", {})}


def ok(event: dict[str, Any]) -> dict[str, Any]:
    return {"payload": {"statusCode": 200, "body": "{}"}}


def run(router: FakeRouter, expected_status: str) -> dict[str, Any]:
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    with Stubber(codedeploy) as stubber:
        stubber.add_response(
            "put_lifecycle_event_hook_execution_status",
            {"lifecycleEventHookExecutionId": "hook-execution-1"},
            {
                "deploymentId": "d-ABCDEF123",
                "lifecycleEventHookExecutionId": "hook-execution-1",
                "status": expected_status,
            },
        )
        logged: list[dict[str, Any]] = []
        handler = create_handler(
            CONFIG, lambda_client=router, codedeploy_client=codedeploy, function_name="router", version="42",
            caller_arn=HOOK_ROLE, log=lambda _message, fields: logged.append(fields),
        )  # fmt: skip
        result = handler(EVENT, None)
        stubber.assert_no_pending_responses()
    assert logged[0]["status"] == expected_status
    return result


def test_every_2xx_reports_succeeded_after_invoking_the_new_version_with_every_smoke_request() -> None:
    router = FakeRouter(ok)
    assert run(router, "Succeeded") == {"status": "Succeeded", "failures": {}}
    assert {(name, qualifier) for name, qualifier, _ in router.calls} == {("router", "42")}
    assert [event["path"] for _, _, event in router.calls] == [request.path for request in smoke_requests(CONFIG)]


def test_a_503_from_the_new_version_reports_failed_naming_the_request() -> None:
    """A wrong endpoint name: the router answers 503 (no Lambda error), and the deployment rolls back."""

    def endpoint_missing(event: dict[str, Any]) -> dict[str, Any]:
        if event["httpMethod"] == "POST" and event["pathParameters"]["model"] == "iris":
            return {"payload": {"statusCode": 503, "body": '{"error": "endpoint dev-iris-typo not found"}'}}
        return ok(event)

    result = run(FakeRouter(endpoint_missing), "Failed")
    assert result["status"] == "Failed"
    assert list(result["failures"]) == ["POST /v2/models/iris/versions/1/infer"]
    assert "answered 503" in result["failures"]["POST /v2/models/iris/versions/1/infer"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (lambda e: {"payload": {"statusCode": 400, "body": "bad"}}, "answered 400"),
        (lambda e: {"payload": {"errorMessage": "boom"}, "extra": {"FunctionError": "Unhandled"}}, "function error"),
        (lambda e: {"payload": None}, "answered None"),
        (lambda e: {"error": ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "Invoke")}, "invoke failed"),
    ],
    ids=["4xx", "function-error", "no-answer", "invoke-failed"],
)
def test_any_other_outcome_reports_failed(answer: Callable[[dict[str, Any]], dict[str, Any]], reason: str) -> None:
    result = run(FakeRouter(answer), "Failed")
    assert all(reason in why for why in result["failures"].values())
    assert len(result["failures"]) == len(smoke_requests(CONFIG))


def test_an_event_without_the_hook_ids_is_refused_and_reports_nothing() -> None:
    codedeploy = boto3.client("codedeploy", region_name="us-east-1")
    with Stubber(codedeploy):  # any call would raise: nothing is stubbed
        handler = create_handler(
            CONFIG, lambda_client=FakeRouter(ok), codedeploy_client=codedeploy, function_name="router", version="42",
            caller_arn=None, log=lambda _message, _fields: None,
        )  # fmt: skip
        with pytest.raises(ValueError, match="not a CodeDeploy lifecycle hook event"):
            handler({"DeploymentId": "d-1"}, None)


def test_the_smoke_event_has_api_gateways_shape_and_names_the_hook_as_caller() -> None:
    [request] = [r for r in smoke_requests(CONFIG) if r.method == "POST"][:1]
    event = rest_event(request, HOOK_ROLE)
    local = build_rest_event(request.method, request.path, {"Content-Type": "application/json"}, request.body)
    assert local is not None
    assert set(event) == set(local)
    for key in ("resource", "path", "httpMethod", "pathParameters", "body", "isBase64Encoded"):
        assert event[key] == local[key], key
    assert set(event["requestContext"]) <= set(local["requestContext"])
    assert event["requestContext"]["identity"]["userArn"] == HOOK_ROLE
