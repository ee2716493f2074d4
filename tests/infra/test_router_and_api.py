"""The router function, its alias and role, and the REST API in front of it, as synthesized."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from functions.config.api_routes import INFER_ROUTES, ROUTES
from functions.config.async_settings import ASYNC_ENVIRONMENT_VARIABLES, AsyncSettings
from functions.config.router_settings import ENVIRONMENT_VARIABLES, RouterSettings
from infra.config.loader import DEFAULT_STAGES_PATH
from local.api_gateway import gateway_error_body
from tests.helpers.synth import Synthesized, ref_id, synthesize

POWERTOOLS_VARIABLES = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"}


def only(found: dict[str, Any]) -> dict[str, Any]:
    assert len(found) == 1, f"expected one resource, found {sorted(found)}"
    resource: dict[str, Any] = next(iter(found.values()))
    return resource


def router_function(synth: Synthesized) -> dict[str, Any]:
    return only(
        synth.resources("AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"})
    )


def test_router_runs_on_graviton_with_the_newest_python_and_powertools_layer(dev: Synthesized) -> None:
    props = router_function(dev)["Properties"]
    assert props["Architectures"] == ["arm64"]
    assert props["Runtime"] == "python3.14"
    assert props["TracingConfig"] == {"Mode": "Active"}
    # The other layers are the in-Lambda tier's own (tests/infra/test_default_in_lambda_model.py).
    assert [layer for layer in props["Layers"] if isinstance(layer, str)] == [
        "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"
    ]
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    # platform.report (cold start init duration, max memory) is an INFO system log.
    assert props["LoggingConfig"]["SystemLogLevel"] == "INFO"


def test_router_timeout_sits_between_the_invoke_budget_and_the_gateway_timeout(prod: Synthesized) -> None:
    props = router_function(prod)["Properties"]
    budget_ms = int(props["Environment"]["Variables"]["INVOKE_BUDGET_MS"])
    for method in prod.resources("AWS::ApiGateway::Method", {"HttpMethod": "POST"}).values():
        integration = method["Properties"]["Integration"]
        assert budget_ms < props["Timeout"] * 1000 < integration["TimeoutInMillis"] <= 29_000


def test_router_settings_accept_exactly_the_environment_the_stack_gives(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        environment = router_function(synth)["Properties"]["Environment"]["Variables"]
        known = {*ENVIRONMENT_VARIABLES, *ASYNC_ENVIRONMENT_VARIABLES}
        assert set(environment) - POWERTOOLS_VARIABLES <= known, sorted(set(environment) - known)
        settings = RouterSettings.from_env(environment)
        assert settings.endpoint_name_prefix == f"{synth.stage}-"
        async_settings = AsyncSettings.from_env(environment)
        assert async_settings is not None
        assert (async_settings.invocation_timeout_s, async_settings.request_ttl_s) == (900, 3600)
        assert async_settings.idempotency_table is not None


def test_router_settings_values_match_the_stage_config(prod: Synthesized) -> None:
    environment = router_function(prod)["Properties"]["Environment"]["Variables"]
    settings = RouterSettings.from_env(environment)
    assert (settings.invoke_budget_ms, settings.response_reserve_ms) == (20_000, 300)
    assert settings.models_config_path is None  # the packaged functions/models.json, same file infra read


def test_live_alias_carries_provisioned_concurrency_only_where_configured(dev: Synthesized, prod: Synthesized) -> None:
    prod_alias = only(prod.resources("AWS::Lambda::Alias"))["Properties"]
    assert prod_alias["Name"] == "live"
    assert prod_alias["ProvisionedConcurrencyConfig"] == {"ProvisionedConcurrentExecutions": 2}
    assert ref_id(prod_alias["FunctionVersion"]) in prod.resources("AWS::Lambda::Version")
    dev_alias = only(dev.resources("AWS::Lambda::Alias"))["Properties"]
    assert "ProvisionedConcurrencyConfig" not in dev_alias
    assert router_function(prod)["Properties"]["ReservedConcurrentExecutions"] == 200
    # dev reserves a little (20 of the account's pool, which keeps at least 100 unreserved): a runaway caller
    # or a loop can never take the concurrency every other function in the account needs.
    assert router_function(dev)["Properties"]["ReservedConcurrentExecutions"] == 20


def test_prod_autoscales_the_live_alias_by_utilization_and_schedule(prod: Synthesized) -> None:
    target = only(prod.platform.resources("AWS::ApplicationAutoScaling::ScalableTarget"))
    props = target["Properties"]
    assert props["ScalableDimension"] == "lambda:function:ProvisionedConcurrency"
    assert (props["ServiceNamespace"], props["MinCapacity"], props["MaxCapacity"]) == ("lambda", 2, 20)
    # The target is the live alias: function:<name>:live, the alias's own ARN reference.
    assert "live" in json.dumps(props["ResourceId"])
    assert [
        (a["ScheduledActionName"], a["Schedule"], a["ScalableTargetAction"]) for a in props["ScheduledActions"]
    ] == [
        ("business-hours", "cron(0 7 ? * MON-FRI *)", {"MinCapacity": 4, "MaxCapacity": 20}),
        ("nights-and-weekends", "cron(0 19 ? * MON-FRI *)", {"MinCapacity": 2, "MaxCapacity": 20}),
    ]
    policy = only(prod.platform.resources("AWS::ApplicationAutoScaling::ScalingPolicy"))["Properties"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 0.7
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "LambdaProvisionedConcurrencyUtilization"
    }
    assert "SnapStart" not in router_function(prod)["Properties"]


def test_dev_restores_the_router_from_a_snapshot_instead_of_keeping_it_warm(dev: Synthesized) -> None:
    assert router_function(dev)["Properties"]["SnapStart"] == {"ApplyOn": "PublishedVersions"}
    assert not dev.platform.resources("AWS::ApplicationAutoScaling::ScalableTarget")
    # SnapStart applies to published versions only: the API calls the live alias, which points at one.
    assert ref_id(only(dev.resources("AWS::Lambda::Alias"))["Properties"]["FunctionVersion"]) in dev.resources(
        "AWS::Lambda::Version"
    )


def router_statements(synth: Synthesized) -> list[dict[str, Any]]:
    role_id = ref_id(router_function(synth)["Properties"]["Role"])
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    role = synth.json["Resources"][role_id]["Properties"]
    assert "ManagedPolicyArns" not in role, "the router's role must not carry a managed policy"
    for inline in role.get("Policies", []):
        statements.extend(inline["PolicyDocument"]["Statement"])
    return statements


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def test_router_role_has_no_wildcard_action_and_invokes_only_its_endpoints(dev: Synthesized) -> None:
    statements = router_statements(dev)
    actions = [action for statement in statements for action in actions_of(statement)]
    assert not [action for action in actions if "*" in action], actions
    allowed = {
        "sagemaker:InvokeEndpoint",
        "sagemaker:InvokeEndpointAsync",
        "sagemaker:DescribeEndpoint",  # the ready routes' endpoint status
        "ssm:GetParameter",  # the serverless endpoint sizes, under the stage's prefix (tests/infra/test_cost_metric.py)
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:ListBucket",  # the bucket only: so a missing result is a 404, not a 403 (S3 HeadObject docs)
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:DescribeKey",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }
    assert set(actions) <= allowed, sorted(set(actions) - allowed)
    invoke = {
        action: statement["Resource"]
        for statement in statements
        for action in actions_of(statement)
        if action.startswith("sagemaker:")
    }
    assert set(invoke) == {"sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointAsync", "sagemaker:DescribeEndpoint"}
    # This stage's endpoints by name prefix, whichever model stack deploys them; nothing else is a wildcard.
    for resource in invoke.values():
        assert json.dumps(resource).endswith(':endpoint/dev-*"]]}'), resource
    assert "*" not in json.dumps(invoke).replace("endpoint/dev-*", "")
    objects = [
        s["Resource"] for s in statements if actions_of(s)[0].startswith("s3:") and "s3:ListBucket" not in s["Action"]
    ]
    # Object access only under the async prefixes: inputs written, outputs read.
    assert sorted(json.dumps(r) for r in objects) == sorted(
        json.dumps(r) for r in objects if "/input/*" in json.dumps(r) or "/output/*" in json.dumps(r)
    )


def api_methods(synth: Synthesized) -> list[dict[str, Any]]:
    return [resource["Properties"] for resource in synth.resources("AWS::ApiGateway::Method").values()]


def test_every_api_method_is_authorized(dev: Synthesized, prod: Synthesized) -> None:
    # One method per route plus ANY /{proxy+}, which lets the router answer unknown paths with an OIP 404.
    assert len(api_methods(prod)) == len(ROUTES) + 1
    for method in api_methods(prod):
        assert method["AuthorizationType"] == "AWS_IAM", method
    for method in api_methods(dev):
        assert method["ApiKeyRequired"] is True, method
    plan = only(dev.resources("AWS::ApiGateway::UsagePlan"))["Properties"]
    assert plan["Quota"] == {"Limit": 10_000, "Period": "DAY"}
    assert plan["Throttle"] == {"BurstLimit": 20, "RateLimit": 10}
    assert dev.resources("AWS::ApiGateway::UsagePlanKey")
    assert not prod.resources("AWS::ApiGateway::UsagePlan")


def test_every_method_integrates_with_the_live_alias_as_a_proxy(prod: Synthesized) -> None:
    alias_id = next(iter(prod.resources("AWS::Lambda::Alias")))
    for method in api_methods(prod):
        integration = method["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert alias_id in str(integration["Uri"])


def infer_body_schemas(synth: Synthesized) -> list[dict[str, Any]]:
    """The request model of each POST method (the infer routes, versioned or not), its validator checked."""
    schemas = []
    for method in synth.resources("AWS::ApiGateway::Method", {"HttpMethod": "POST"}).values():
        infer = method["Properties"]
        validator = synth.json["Resources"][ref_id(infer["RequestValidatorId"])]["Properties"]
        assert validator["ValidateRequestBody"] is True
        schemas.append(
            synth.json["Resources"][ref_id(infer["RequestModels"]["application/json"])]["Properties"]["Schema"]
        )
    return schemas


def test_infer_body_is_validated_against_the_oip_schema(prod: Synthesized) -> None:
    schemas = infer_body_schemas(prod)
    assert len(schemas) == len(INFER_ROUTES) == 2
    for schema in schemas:
        assert schema["required"] == ["inputs"]
        assert schema["properties"]["inputs"]["items"]["required"] == ["name", "shape", "datatype", "data"]


# The kserve SDK 0.21.0's InferRequest.to_rest() for one FP32 input: "id" (a uuid4 when none is given) and
# "model_name" always, "outputs" and "parameters" when set.
KSERVE_BODY = {
    "id": "6f1c2b9e-8a41-4c1e-9a57-0d3c2f7e1b64",
    "model_name": "iris",
    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}],
    "outputs": [{"name": "label"}],
    "parameters": {"priority": 1},
}


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        (KSERVE_BODY, True),
        ({**KSERVE_BODY, "model_version": "1"}, True),
        ({**KSERVE_BODY, "model_name": 7}, False),
        ({**KSERVE_BODY, "model": "iris"}, False),  # any other top-level field: refused, as the router does
    ],
)
def test_the_gateway_request_model_takes_the_kserve_sdk_body(
    prod: Synthesized, body: dict[str, Any], accepted: bool
) -> None:
    # API Gateway validates request models as JSON Schema draft 4.
    for schema in infer_body_schemas(prod):
        assert jsonschema.Draft4Validator(schema).is_valid(body) is accepted


def test_a_wrong_method_on_a_route_gets_the_gateway_answer_local_mode_gives(prod: Synthesized) -> None:
    """API Gateway answers a method a resource lacks with MISSING_AUTHENTICATION_TOKEN (403); unmapped, it takes
    DEFAULT_4XX's template. Local mode writes that template's rendering (local.api_gateway)."""
    responses = {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in prod.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert "MISSING_AUTHENTICATION_TOKEN" not in responses
    template = responses["DEFAULT_4XX"]["ResponseTemplates"]["application/json"]
    rendered = template.replace("$context.error.messageString", json.dumps("Missing Authentication Token"))
    assert gateway_error_body("Missing Authentication Token") == rendered.encode()
    assert "REQUEST_TOO_LARGE" not in responses
    assert (
        gateway_error_body("Request Too Long")
        == template.replace("$context.error.messageString", json.dumps("Request Too Long")).encode()
    )


def test_stage_throttles_logs_json_and_traces(prod: Synthesized) -> None:
    stage = only(prod.resources("AWS::ApiGateway::Stage"))["Properties"]
    assert stage["StageName"] == "prod"
    assert stage["TracingEnabled"] is True
    settings = stage["MethodSettings"][0]
    assert settings["LoggingLevel"] == "ERROR"
    assert settings["ThrottlingRateLimit"] == 500
    assert settings["ThrottlingBurstLimit"] == 1000
    assert settings["DataTraceEnabled"] is False
    access_log = stage["AccessLogSetting"]
    assert access_log["Format"].startswith("{")
    assert '"status"' in access_log["Format"]


def test_waf_guards_prod_only(dev: Synthesized, prod: Synthesized) -> None:
    acl = only(prod.resources("AWS::WAFv2::WebACL"))["Properties"]
    assert acl["Scope"] == "REGIONAL"
    rate = next(rule for rule in acl["Rules"] if "RateBasedStatement" in rule["Statement"])
    assert rate["Statement"]["RateBasedStatement"] == {"AggregateKeyType": "IP", "Limit": 3000}
    assert prod.resources("AWS::WAFv2::WebACLAssociation")
    assert not dev.resources("AWS::WAFv2::WebACL")


def test_gateway_errors_use_the_router_error_shape(prod: Synthesized) -> None:
    responses = {
        resource["Properties"]["ResponseType"]: resource["Properties"]
        for resource in prod.resources("AWS::ApiGateway::GatewayResponse").values()
    }
    assert {"BAD_REQUEST_BODY", "THROTTLED", "QUOTA_EXCEEDED", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    assert responses["THROTTLED"]["ResponseParameters"] == {"gatewayresponse.header.Retry-After": "'1'"}
    assert '"error"' in responses["DEFAULT_5XX"]["ResponseTemplates"]["application/json"]


POLICY = [
    {"principal": "arn:aws:iam::123456789012:role/ranker", "models": {"iris": ["sync"]}},
    {"api_key_id": "a1b2c3d4e5", "models": {"*": ["sync", "async"]}},
]


@pytest.fixture(scope="module")
def prod_with_policy(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    """prod (an IAM stage) with a caller policy and API keys required on top of SigV4."""
    document = json.loads(DEFAULT_STAGES_PATH.read_text())
    document["stages"]["prod"]["caller_policy"] = POLICY
    document["stages"]["prod"]["api"]["require_api_key"] = True
    path = tmp_path_factory.mktemp("stages") / "stages.json"
    path.write_text(json.dumps(document))
    return synthesize("prod", tmp_path_factory.mktemp("cdk-prod-policy"), stages_path=path)


def test_the_router_gets_the_stage_caller_policy_and_reads_it_back(
    prod_with_policy: Synthesized, prod: Synthesized, dev: Synthesized
) -> None:
    environment = router_function(prod_with_policy)["Properties"]["Environment"]["Variables"]
    settings = RouterSettings.from_env(environment)
    assert settings.caller_policy is not None
    assert json.loads(environment["CALLER_POLICY"]) == POLICY
    assert settings.caller_policy.to_env() == environment["CALLER_POLICY"]
    for synth in (prod, dev):  # no policy: no variable, every authenticated caller may call every model
        assert "CALLER_POLICY" not in router_function(synth)["Properties"]["Environment"]["Variables"]


def test_an_iam_stage_can_require_an_api_key_on_top_of_sigv4(prod_with_policy: Synthesized, prod: Synthesized) -> None:
    assert not any(method.get("ApiKeyRequired") for method in api_methods(prod))  # off by default
    methods = api_methods(prod_with_policy)
    assert len(methods) == len(ROUTES) + 1
    for method in methods:
        assert (method["AuthorizationType"], method["ApiKeyRequired"]) == ("AWS_IAM", True), method
    plan = only(prod_with_policy.resources("AWS::ApiGateway::UsagePlan"))["Properties"]
    assert plan["Quota"] == {"Limit": 100_000, "Period": "DAY"}  # the defaults' usage plan meters IAM callers
    assert prod_with_policy.resources("AWS::ApiGateway::UsagePlanKey")
    assert "ApiKeyId" in prod_with_policy.platform.json["Outputs"]
