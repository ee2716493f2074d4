"""InferenceRouterStack: composes the constructs of one stage; it holds no resources of its own.

Everything it knows comes from two files: the model and route config the router reads
(``functions/models.json``) and the stage config (``infra/stages.json``), both checked before any construct
is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aws_cdk import CfnOutput, Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from functions.config.api_routes import ROUTES
from functions.config.model_types import ModelsConfig
from infra.config.types import IMAGE_ASSET, StageConfig
from infra.constructs.alarms import RouterAlarms, ServerlessEndpointTarget
from infra.constructs.api import InferenceApi
from infra.constructs.async_pipeline import AsyncPipeline
from infra.constructs.async_storage import AsyncStorage
from infra.constructs.in_lambda_models import DEFAULT_ONNXRUNTIME_LAYER, InLambdaModels
from infra.constructs.model_endpoint import ModelEndpoint
from infra.constructs.python_function import functions_code
from infra.constructs.router import Router
from infra.model_package import DEFAULT_OUTPUT_DIR, package_model

# CloudWatch Logs accepts only these retention periods; the stage config checks the number against the same set.
RETENTION_BY_DAYS: Final[dict[int, logs.RetentionDays]] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}
REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
SERVING_DOCKERFILES: Final[dict[str, str]] = {
    "cpu": "docker/serving/Dockerfile",
    "gpu": "docker/serving-gpu/Dockerfile",
}
REMOVAL_POLICY_BY_NAME: Final[dict[str, RemovalPolicy]] = {
    "retain": RemovalPolicy.RETAIN,
    "destroy": RemovalPolicy.DESTROY,
}


def stack_name(stage: str) -> str:
    return f"InferenceRouter-{stage}"


class InferenceRouterStack(Stack):
    """Router, API, model endpoints, async storage with its dead-letter queue, and the on-call alarms.

    Props (keyword-only):
        models: the model and route config (the router's own ``functions/models.json``).
        stage: the checked stage config.
        router_code: the router's code; defaults to the ``functions`` package from the repo (tests pass a
            small inline asset to keep synth fast).
        model_package_dir: where model.tar.gz archives are written before CDK stages them as assets.
        onnxruntime_layer_zip: the layer ``make layers`` builds; needed only when a model's route is ``lambda``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: ModelsConfig,
        stage: StageConfig,
        router_code: lambda_.Code | None = None,
        model_package_dir: Path = DEFAULT_OUTPUT_DIR,
        onnxruntime_layer_zip: Path = DEFAULT_ONNXRUNTIME_LAYER,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self._images: dict[str, ecr_assets.DockerImageAsset] = {}
        removal = REMOVAL_POLICY_BY_NAME[stage.removal_policy]
        for key, value in stage.tags.items():
            Tags.of(self).add(key, value)
        Tags.of(self).add("stage", stage.name)

        storage = AsyncStorage(
            self,
            "AsyncStorage",
            object_expiry_days=stage.async_storage.object_expiry_days,
            access_log_expiry_days=stage.async_storage.access_log_expiry_days,
            queue_visibility_timeout=Duration.seconds(stage.async_storage.queue_visibility_timeout_s),
            max_receive_count=stage.async_storage.max_receive_count,
            removal_policy=removal,
        )

        endpoints: list[ModelEndpoint] = []
        watched_serverless: list[ServerlessEndpointTarget] = []
        for model in models.models:
            deploy = stage.models.get(model.name)
            if deploy is None:  # no SageMaker route (e.g. a model that runs inside the router)
                continue
            asset: s3_assets.Asset | None = None
            if deploy.model_data_url is None:
                archive = package_model(models, model, output_dir=model_package_dir)
                asset = s3_assets.Asset(self, f"{_pascal(model.name)}ModelData", path=str(archive))
            serverless_name = model.route.serverless_endpoint
            async_name = model.route.async_endpoint
            endpoints.append(
                ModelEndpoint(
                    self,
                    f"{_pascal(model.name)}Endpoint",
                    model=model,
                    endpoint_name_prefix=stage.endpoint_name_prefix,
                    image_uri="" if deploy.image == IMAGE_ASSET else deploy.image,
                    image_asset=self._serving_image("cpu") if deploy.image == IMAGE_ASSET else None,
                    async_image_uri="" if deploy.async_image == IMAGE_ASSET else deploy.async_image,
                    async_image_asset=self._serving_image("gpu") if deploy.async_image == IMAGE_ASSET else None,
                    model_data_asset=asset,
                    model_data_url=deploy.model_data_url,
                    serverless=stage.serverless_endpoints[serverless_name] if serverless_name else None,
                    async_inference=stage.async_endpoints[async_name] if async_name else None,
                    async_storage=storage if async_name else None,
                )
            )
            if serverless_name:
                watched_serverless.append(
                    ServerlessEndpointTarget(
                        stage.endpoint_name(serverless_name),
                        provisioned=stage.serverless_endpoints[serverless_name].provisioned_concurrency > 0,
                    )
                )

        code = router_code if router_code is not None else functions_code()
        async_environment = storage.function_environment(
            invocation_timeout_s=stage.async_storage.invocation_timeout_s,
            request_ttl_s=stage.async_storage.request_ttl_s,
            result_inline_max_bytes=stage.async_storage.result_inline_max_bytes,
        )
        router = Router(
            self,
            "Router",
            powertools_layer_arn=stage.powertools_layer_arn,
            endpoint_name_prefix=stage.endpoint_name_prefix,
            invoke_budget_ms=stage.router.invoke_budget_ms,
            response_reserve_ms=stage.router.response_reserve_ms,
            memory_mb=stage.router.memory_mb,
            timeout=Duration.seconds(stage.router.timeout_s),
            reserved_concurrency=stage.router.reserved_concurrency,
            provisioned_concurrency=stage.router.provisioned_concurrency,
            log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
            log_level=stage.router.log_level,
            log_removal_policy=removal,
            sync_endpoint_arns=[
                _endpoint_arn(self, e.serverless_endpoint_name) for e in endpoints if e.serverless_endpoint_name
            ],
            async_endpoint_arns=[
                _endpoint_arn(self, e.async_endpoint_name) for e in endpoints if e.async_endpoint_name
            ],
            async_environment=async_environment,
            code=code,
        )
        storage.grant_router(router.role)
        in_lambda_models = [model for model in models.models if model.route.sync == "lambda"]
        if in_lambda_models:
            in_lambda = InLambdaModels(
                self, "InLambdaModels", models=in_lambda_models, onnxruntime_layer_zip=onnxruntime_layer_zip
            )
            router.function.add_layers(*in_lambda.layers)
            for variable, value in in_lambda.environment.items():
                router.function.add_environment(variable, value)
        pipeline = AsyncPipeline(
            self,
            "AsyncPipeline",
            storage=storage,
            queue_visibility_timeout=Duration.seconds(stage.async_storage.queue_visibility_timeout_s),
            code=code,
            powertools_layer_arn=stage.powertools_layer_arn,
            environment={**async_environment, "ENDPOINT_NAME_PREFIX": stage.endpoint_name_prefix},
            result_timeout=Duration.seconds(stage.async_storage.result_function_timeout_s),
            result_batch_size=stage.async_storage.result_batch_size,
            sweep_interval=Duration.minutes(stage.async_storage.sweep_interval_minutes),
            log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
            log_level=stage.router.log_level,
            log_removal_policy=removal,
        )
        # The router invokes endpoints by name; deploy them first so its first request finds them.
        for endpoint in endpoints:
            router.alias.node.add_dependency(endpoint)

        api = InferenceApi(
            self,
            "Api",
            handler=router.alias,
            routes=ROUTES,
            api_name=self.stack_name,
            stage_name=stage.name,
            auth=stage.api.auth,
            throttle=stage.api.throttle,
            usage_plan=stage.api.usage_plan,
            waf=stage.api.waf,
            integration_timeout=Duration.millis(stage.api.integration_timeout_ms),
            access_log_retention=RETENTION_BY_DAYS[stage.api.access_log_retention_days],
            create_account_cloudwatch_role=stage.api.create_account_cloudwatch_role,
            removal_policy=removal,
        )

        alarms = RouterAlarms(
            self,
            "Alarms",
            alarms=stage.alarms,
            runbook_base_url=stage.runbook_base_url,
            router_alias=router.alias,
            router_provisioned=stage.router.provisioned_concurrency > 0,
            api_stage=api.stage,
            serverless_endpoints=watched_serverless,
            async_endpoint_names=[e.async_endpoint_name for e in endpoints if e.async_endpoint_name],
            dead_letter_queue=storage.dead_letter_queue,
            subscriptions=stage.alarm_subscriptions,
            removal_policy=removal,
        )

        self._outputs(router=router, api=api, storage=storage, endpoints=endpoints, alarms=alarms, stage=stage)

        self.router = router
        self.api = api
        self.storage = storage
        self.endpoints = endpoints
        self.alarms = alarms
        self.pipeline = pipeline

    def _outputs(
        self,
        *,
        router: Router,
        api: InferenceApi,
        storage: AsyncStorage,
        endpoints: list[ModelEndpoint],
        alarms: RouterAlarms,
        stage: StageConfig,
    ) -> None:
        CfnOutput(self, "ApiUrl", value=api.rest_api.url, description="Base URL of the inference API (OIP /v2)")
        CfnOutput(self, "RouterAlias", value=router.alias.function_arn, description="The router's live alias")
        for endpoint in endpoints:
            for endpoint_name in (endpoint.serverless_endpoint_name, endpoint.async_endpoint_name):
                if endpoint_name:
                    CfnOutput(
                        self,
                        f"Endpoint{_pascal(endpoint_name)}",
                        value=endpoint_name,
                        description="SageMaker endpoint name",
                    )
        CfnOutput(self, "AsyncBucket", value=storage.bucket.bucket_name)
        CfnOutput(self, "ResultQueueUrl", value=storage.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=storage.dead_letter_queue.queue_url)
        CfnOutput(self, "JobTable", value=storage.job_table.table_name)
        CfnOutput(self, "EndpointNamePrefix", value=stage.endpoint_name_prefix)
        for topic_name, topic in alarms.topics.items():
            CfnOutput(
                self, f"{_pascal(topic_name)}TopicArn", value=topic.topic_arn, description=f"Alarm topic: {topic_name}"
            )
        if api.api_key is not None:
            CfnOutput(
                self,
                "ApiKeyId",
                value=api.api_key.key_id,
                description="aws apigateway get-api-key --include-value --api-key <id> prints the key",
            )

    def _serving_image(self, variant: str) -> ecr_assets.DockerImageAsset:
        """The repo's serving image, one asset per variant for the whole stack (the model comes from S3).

        CDK records the asset at synth and builds it only when ``cdk deploy`` publishes assets, so synth never
        needs Docker. SageMaker runs x86_64 images.
        """
        if variant not in self._images:
            self._images[variant] = ecr_assets.DockerImageAsset(
                self,
                f"ServingImage{variant.capitalize()}",
                directory=str(REPO_ROOT),
                file=SERVING_DOCKERFILES[variant],
                platform=ecr_assets.Platform.LINUX_AMD64,
            )
        return self._images[variant]


def _endpoint_arn(scope: Construct, endpoint_name: str) -> str:
    # SageMaker ARNs hold the endpoint name in lower case, whatever case it was created with.
    return Stack.of(scope).format_arn(service="sagemaker", resource="endpoint", resource_name=endpoint_name.lower())


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))
