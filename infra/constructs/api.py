"""InferenceApi: the public REST API (only REST has request validation, WAF, API keys and usage plans).

Every route in ``functions/config/api_routes.py`` becomes a resource and method here, plus ``ANY /{proxy+}`` so an
unknown path still reaches the router, which answers a clear OIP 404 instead of API Gateway's
"Missing Authentication Token". All methods are Lambda proxy integrations on the router's ``live`` alias.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from functions.config.api_routes import INFER_REQUEST_SCHEMA, INFER_ROUTES, ApiRoute
from infra.config.types import Throttle, UsagePlanConfig, WafConfig
from infra.guardrails import acknowledge

AuthMode = Literal["iam", "api_key"]
JSON_CONTENT_TYPE: Final[str] = "application/json"
BINARY_MEDIA_TYPES: Final[tuple[str, ...]] = (
    "application/octet-stream",
    "application/vnd.sagemaker-triton.binary+json",
)
# API Gateway's own error answers in the router's shape ({"error": ...}, docs/architecture.md, 'Status codes').
ERROR_TEMPLATE: Final[str] = '{"error": $context.error.messageString}'
INVALID_BODY_TEMPLATE: Final[str] = (
    '{"error": "request body is not an Open Inference Protocol infer request: it needs '
    '{\\"inputs\\": [{\\"name\\", \\"shape\\", \\"datatype\\", \\"data\\"}]}"}'
)


class InferenceApi(Construct):
    """REST API with IAM (default) or API-key auth, throttling, validation, JSON access logs and optional WAF.

    Props (keyword-only):
        handler: the router alias every method integrates with.
        routes: the API's routes (``functions.config.api_routes.ROUTES``).
        api_name: the REST API's name, also the ``ApiName`` dimension of its metrics: unique per account and
            region, or the API's alarms would count another API's requests.
        stage_name: the API stage (also the URL's first path segment).
        auth: "iam" signs every request with SigV4; "api_key" requires an x-api-key from a usage plan.
        throttle: stage-wide rate (req/s) and burst.
        usage_plan: per-key throttle and daily quota (in "api_key" mode, or with ``require_api_key``).
        require_api_key: in "iam" mode, every method also requires an x-api-key from the usage plan, so the
            plan's throttle and quota meter each IAM caller; "api_key" mode always requires one.
        waf: when enabled, a regional WAFv2 web ACL with AWS managed rules and a per-IP rate limit.
        integration_timeout: at most 29 s; must exceed the router's timeout (checked by the stage config).
        access_log_retention: retention of the JSON access log group.
        create_account_cloudwatch_role: set the region-wide API Gateway logging role (once per account/region).
        removal_policy: for the access log group.

    Attributes: ``rest_api``, ``stage``, ``access_log_group``, ``api_key`` / ``usage_plan`` (api_key mode),
    ``web_acl`` (when WAF is on), ``methods`` (every method created).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        routes: Sequence[ApiRoute],
        api_name: str,
        stage_name: str,
        auth: AuthMode = "iam",
        throttle: Throttle,
        usage_plan: UsagePlanConfig,
        waf: WafConfig,
        integration_timeout: Duration,
        access_log_retention: logs.RetentionDays,
        create_account_cloudwatch_role: bool,
        removal_policy: RemovalPolicy,
        require_api_key: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        where = f"InferenceApi {construct_id}"
        if not routes:
            raise ValueError(f"{where}: routes must not be empty")
        seen = set()
        for route in routes:
            if (route.method, route.resource) in seen:
                raise ValueError(f"{where}: route {route.method} {route.resource} is listed twice")
            seen.add((route.method, route.resource))

        self.access_log_group = logs.LogGroup(
            self, "AccessLogs", retention=access_log_retention, removal_policy=removal_policy
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=api_name,
            description="Open Inference Protocol (KServe v2 REST) in front of the inference router",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # The binary tensor data extension: API Gateway passes a body whole (base64 to the router) when its
            # Content-Type is one of these, and a binary answer when the first Accept is. Not */*: every JSON body
            # would then reach the Lambda base64, 4/3 its size, and a 6 MB body would overrun Lambda's 6 MB event.
            binary_media_types=list(BINARY_MEDIA_TYPES),
            cloud_watch_role=create_account_cloudwatch_role,
            # The account-wide logging role outlives this stack: other APIs in the region may rely on it.
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            api_key_source_type=apigateway.ApiKeySourceType.HEADER,
            fail_on_warnings=True,
            deploy_options=apigateway.StageOptions(
                stage_name=stage_name,
                throttling_rate_limit=throttle.rate_limit,
                throttling_burst_limit=throttle.burst_limit,
                logging_level=apigateway.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                access_log_destination=apigateway.LogGroupLogDestination(self.access_log_group),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
            ),
        )
        self.stage = self.rest_api.deployment_stage
        if create_account_cloudwatch_role:
            acknowledge(
                self.rest_api,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                "API Gateway's account-level logging role; this AWS-managed policy is the documented way to let "
                "API Gateway write execution and access logs.",
            )

        integration = apigateway.LambdaIntegration(
            handler,
            proxy=True,
            timeout=integration_timeout,
            # Every method reaches the same alias: one permission scoped to this API's ARN is enough.
            scope_permission_to_method=False,
        )
        authorization = apigateway.AuthorizationType.IAM if auth == "iam" else apigateway.AuthorizationType.NONE
        keys_required = auth == "api_key" or require_api_key
        method_options: dict[str, Any] = {"authorization_type": authorization, "api_key_required": keys_required}

        infer_model = self.rest_api.add_model(
            "InferRequest",
            content_type=JSON_CONTENT_TYPE,
            description="Open Inference Protocol infer request",
            schema=_json_schema(INFER_REQUEST_SCHEMA, root=True),
        )
        validator = self.rest_api.add_request_validator(
            "InferBodyValidator", validate_request_body=True, validate_request_parameters=True
        )

        self.methods: list[apigateway.Method] = []
        for route in routes:
            resource = self.rest_api.root.resource_for_path(route.resource)
            extra: dict[str, Any] = {}
            if route in INFER_ROUTES:
                extra = {"request_validator": validator, "request_models": {JSON_CONTENT_TYPE: infer_model}}
            self.methods.append(resource.add_method(route.method, integration, **method_options, **extra))
        proxy = self.rest_api.root.add_resource("{proxy+}")
        self.methods.append(proxy.add_method("ANY", integration, **method_options))

        for response_type, template, headers in (
            (apigateway.ResponseType.BAD_REQUEST_BODY, INVALID_BODY_TEMPLATE, {}),
            (apigateway.ResponseType.THROTTLED, ERROR_TEMPLATE, {"Retry-After": "'1'"}),
            (apigateway.ResponseType.QUOTA_EXCEEDED, ERROR_TEMPLATE, {"Retry-After": "'3600'"}),
            (apigateway.ResponseType.DEFAULT_4_XX, ERROR_TEMPLATE, {}),
            (apigateway.ResponseType.DEFAULT_5_XX, ERROR_TEMPLATE, {}),
        ):
            self.rest_api.add_gateway_response(
                f"{response_type.response_type}Response",
                type=response_type,
                templates={JSON_CONTENT_TYPE: template},
                response_headers=headers or None,
            )

        self.api_key: apigateway.IApiKey | None = None
        self.usage_plan: apigateway.UsagePlan | None = None
        if keys_required:
            self.usage_plan = self.rest_api.add_usage_plan(
                "UsagePlan",
                description="Per-key throttle and daily quota for inference callers",
                throttle=apigateway.ThrottleSettings(
                    rate_limit=usage_plan.throttle.rate_limit, burst_limit=usage_plan.throttle.burst_limit
                ),
                quota=apigateway.QuotaSettings(limit=usage_plan.quota_per_day, period=apigateway.Period.DAY),
                api_stages=[apigateway.UsagePlanPerApiStage(api=self.rest_api, stage=self.stage)],
            )
            self.api_key = self.rest_api.add_api_key("ApiKey", description="First inference caller key")
            self.usage_plan.add_api_key(self.api_key)
        if auth == "api_key":
            for finding, reason in (
                (
                    "AwsSolutions-APIG4",
                    "Callers authenticate with an API key tied to a usage plan (stage config auth='api_key'); "
                    "set auth='iam' for SigV4 authorization.",
                ),
                (
                    "AwsSolutions-COG4",
                    "No Cognito user pool: callers are services holding API keys, metered by a usage plan.",
                ),
            ):
                acknowledge(self.rest_api, finding, reason)
        else:
            acknowledge(
                self.rest_api,
                "AwsSolutions-COG4",
                "Callers are AWS principals authorized with SigV4 (AWS_IAM on every method), not Cognito users.",
            )

        self.web_acl: wafv2.CfnWebACL | None = None
        if waf.enabled:
            self.web_acl = self._web_acl(waf)
            association = wafv2.CfnWebACLAssociation(
                self, "WebAclAssociation", resource_arn=self.stage.stage_arn, web_acl_arn=self.web_acl.attr_arn
            )
            association.node.add_dependency(self.stage)
        else:
            acknowledge(
                self.rest_api,
                "AwsSolutions-APIG3",
                "WAF is off in this stage by config (api.waf.enabled=false, to save its fixed monthly cost); "
                "production stages turn it on.",
            )

    def _web_acl(self, waf: WafConfig) -> wafv2.CfnWebACL:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(priority: int, name: str, count_rules: Sequence[str] = ()) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={})
                            )
                            for rule in count_rules
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(name),
            )

        return wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility("InferenceApiWebAcl"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=waf.rate_limit_per_5_min, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RateLimitPerIp"),
                ),
                # The common rule set blocks bodies over 8 KB; infer bodies are legitimately up to megabytes, and
                # the route's own body limit is enforced by the router, so that one rule only counts.
                managed(1, "AWSManagedRulesCommonRuleSet", count_rules=["SizeRestrictions_BODY"]),
                managed(2, "AWSManagedRulesKnownBadInputsRuleSet"),
            ],
        )


def _json_schema(schema: dict[str, Any], *, root: bool = False) -> apigateway.JsonSchema:
    """Turn a JSON-schema dict into CDK's JsonSchema (draft 4, the dialect API Gateway validates)."""
    kinds = {
        "object": apigateway.JsonSchemaType.OBJECT,
        "array": apigateway.JsonSchemaType.ARRAY,
        "string": apigateway.JsonSchemaType.STRING,
        "integer": apigateway.JsonSchemaType.INTEGER,
        "number": apigateway.JsonSchemaType.NUMBER,
        "boolean": apigateway.JsonSchemaType.BOOLEAN,
    }
    args: dict[str, Any] = {"schema": apigateway.JsonSchemaVersion.DRAFT4} if root else {}
    if "type" in schema:
        args["type"] = kinds[schema["type"]]
    if "required" in schema:
        args["required"] = list(schema["required"])
    if "additionalProperties" in schema:
        args["additional_properties"] = schema["additionalProperties"]
    if "properties" in schema:
        args["properties"] = {name: _json_schema(sub) for name, sub in schema["properties"].items()}
    if "items" in schema:
        args["items"] = _json_schema(schema["items"])
    for key, arg in (("minItems", "min_items"), ("minLength", "min_length"), ("minimum", "minimum")):
        if key in schema:
            args[arg] = schema[key]
    return apigateway.JsonSchema(**args)
