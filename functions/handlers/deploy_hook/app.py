"""The pre-traffic hook's wiring: :func:`create_handler` takes the clients and the version under deployment.

CodeDeploy invokes the hook with its deployment and lifecycle hook execution ids before it shifts any of the
live alias's traffic (AppSpec "BeforeAllowTraffic"). The hook invokes the NEW router version directly (its
version qualifier, never the alias) with each smoke request of the packaged model config
(functions/domain/smoke_requests.py), shaped as API Gateway's REST proxy events, and reports ``Succeeded``
only when every answer is 2xx; anything else (a 5xx, a 4xx, a function error, a failed invoke) reports
``Failed`` and CodeDeploy rolls the alias back before a caller meets the version.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from functions.config.model_types import ModelsConfig
from functions.domain.smoke_requests import SmokeRequest, smoke_requests

SUCCEEDED: Final[str] = "Succeeded"
FAILED: Final[str] = "Failed"
HOOK_STAGE: Final[str] = "deploy-hook"

HookHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def rest_event(request: SmokeRequest, caller_arn: str | None) -> dict[str, Any]:
    """The REST proxy event API Gateway would send for ``request``; the caller is the hook's own role, so a
    caller policy admits the smoke requests by naming it."""
    headers = {"Content-Type": "application/json"} if request.body else {}
    request_id = str(uuid.uuid4())
    return {
        "resource": request.resource,
        "path": request.path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": {name: [value] for name, value in headers.items()} or None,
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(request.path_parameters),
        "stageVariables": None,
        "requestContext": {
            "httpMethod": request.method,
            "identity": {"userArn": caller_arn, "sourceIp": "127.0.0.1", "userAgent": HOOK_STAGE},
            "path": f"/{HOOK_STAGE}{request.path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "resourcePath": request.resource,
            "stage": HOOK_STAGE,
        },
        "body": request.body.decode() if request.body else None,
        "isBase64Encoded": False,
    }


def create_handler(
    config: ModelsConfig,
    *,
    lambda_client: Any,
    codedeploy_client: Any,
    function_name: str,
    version: str,
    caller_arn: str | None,
    log: Callable[[str, dict[str, Any]], None],
) -> HookHandler:
    """``version``: the router version under deployment (a number, never an alias or $LATEST)."""
    requests = smoke_requests(config)

    def smoke(request: SmokeRequest) -> str | None:
        """None when the new version answered 2xx, else why not."""
        try:
            response = lambda_client.invoke(
                FunctionName=function_name,
                Qualifier=version,
                Payload=json.dumps(rest_event(request, caller_arn)).encode(),
            )
            payload = json.loads(response["Payload"].read() or b"null")
        except (BotoCoreError, ClientError, ValueError) as error:
            return f"invoke failed: {error}"
        if response.get("FunctionError"):
            return f"function error {response['FunctionError']}: {str(payload)[:300]}"
        status = payload.get("statusCode") if isinstance(payload, dict) else None
        if not isinstance(status, int) or not 200 <= status < 300:
            body = payload.get("body") if isinstance(payload, dict) else payload
            return f"answered {status}: {str(body)[:300]}"
        return None

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        deployment_id = event.get("DeploymentId")
        execution_id = event.get("LifecycleEventHookExecutionId")
        if not isinstance(deployment_id, str) or not isinstance(execution_id, str):
            # Nothing to report to: CodeDeploy fails the deployment when the hook never reports (its timeout).
            raise ValueError("not a CodeDeploy lifecycle hook event: DeploymentId and LifecycleEventHookExecutionId")
        failures = {}
        for request in requests:
            reason = smoke(request)
            if reason is not None:
                failures[f"{request.method} {request.path}"] = reason
        status = FAILED if failures else SUCCEEDED
        log(
            "smoke requests done",
            {"deployment_id": deployment_id, "version": version, "status": status, "requests": len(requests),
             "failures": failures},
        )  # fmt: skip
        codedeploy_client.put_lifecycle_event_hook_execution_status(
            deploymentId=deployment_id, lifecycleEventHookExecutionId=execution_id, status=status
        )
        return {"status": status, "failures": failures}

    return lambda_handler
