"""PlatformStack: what every model of a stage shares; it composes constructs and holds no resources itself.

The API, the router (with the in-Lambda models), the async storage and its result pipeline, the alarm topics
and the alarms on the shared parts. Nothing in it grows with the number of SageMaker models: the router may
invoke the stage's endpoints by name prefix, and the values model stacks need are published as SSM
parameters (:mod:`infra.constructs.platform_parameters`), never as stack exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import CfnOutput, Duration, Stack
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from functions.config.api_routes import ROUTES
from functions.config.model_types import ModelsConfig
from infra.config.costing import cost_environment, sweeper_cost_environment
from infra.config.slo import latency_targets_env
from infra.config.types import StageConfig
from infra.constructs.alarms import RouterAlarms
from infra.constructs.api import InferenceApi
from infra.constructs.async_pipeline import AsyncPipeline
from infra.constructs.async_storage import AsyncStorage
from infra.constructs.capture import CaptureDelivery
from infra.constructs.data_perimeter import enforce_data_perimeter
from infra.constructs.drift import DriftJob, capture_baselines, feature_drift_alarm
from infra.constructs.in_lambda_models import DEFAULT_ONNXRUNTIME_LAYER, InLambdaModels
from infra.constructs.on_call_alarm import pascal
from infra.constructs.platform_parameters import ALARM_TOPIC_VALUES, PlatformValue, publish_platform_values
from infra.constructs.python_function import functions_code
from infra.constructs.router import Router
from infra.constructs.router_deployment import RouterDeployment
from infra.constructs.shadow import ShadowWorker
from infra.constructs.slo import ModelSlo, slo_name_prefix
from infra.constructs.stage_dashboard import StageDashboard
from infra.stacks.naming import role_arn_pattern, sagemaker_role_path
from infra.stacks.stage_values import REMOVAL_POLICY_BY_NAME, RETENTION_BY_DAYS, tag_stage


class PlatformStack(Stack):
    """Router, API, async storage with its dead-letter queue and pipeline, alarm topics and shared alarms.

    Props (keyword-only):
        models: the model and route config (the router's own ``functions/models.json``).
        stage: the checked stage config.
        router_code: the router's code; defaults to the ``functions`` package from the repo (tests pass a
            small inline asset to keep synth fast).
        onnxruntime_layer_zip: the layer ``make layers`` builds; needed only when a model's route is ``lambda``.

    Attributes: ``router``, ``api``, ``storage``, ``alarms``, ``pipeline``, ``shadow`` (None without a shadow
    version in ``models``), ``capture`` and ``drift`` (None when no model has a capture block).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: ModelsConfig,
        stage: StageConfig,
        router_code: lambda_.Code | None = None,
        onnxruntime_layer_zip: Path = DEFAULT_ONNXRUNTIME_LAYER,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        removal = REMOVAL_POLICY_BY_NAME[stage.removal_policy]
        tag_stage(self, stage)

        storage = AsyncStorage(
            self,
            "AsyncStorage",
            object_expiry_days=stage.async_storage.object_expiry_days,
            access_log_expiry_days=stage.async_storage.access_log_expiry_days,
            queue_visibility_timeout=Duration.seconds(stage.async_storage.queue_visibility_timeout_s),
            max_receive_count=stage.async_storage.max_receive_count,
            removal_policy=removal,
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
            pc_autoscaling=stage.router.provisioned_concurrency_autoscaling,
            snap_start=stage.router.snap_start,
            log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
            log_level=stage.router.log_level,
            log_removal_policy=removal,
            invokes_endpoints=bool(stage.models),
            async_environment=async_environment,
            caller_policy=stage.caller_policy.to_env() if stage.caller_policy is not None else None,
            latency_targets=latency_targets_env(stage.slo),
            cost_environment=cost_environment(stage),
            code=code,
        )
        storage.grant_router(router.role)
        in_lambda_models = models.in_lambda_models()
        if in_lambda_models:
            in_lambda = InLambdaModels(
                self, "InLambdaModels", models=in_lambda_models, onnxruntime_layer_zip=onnxruntime_layer_zip
            )
            router.function.add_layers(*in_lambda.layers)
            for variable, value in in_lambda.environment.items():
                router.function.add_environment(variable, value)
        RouterDeployment(
            self,
            "RouterDeployment",
            router=router,
            deployment=stage.router.deployment,
            slo=stage.slo,
            powertools_layer_arn=stage.powertools_layer_arn,
            code=code,
            log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
            log_level=stage.router.log_level,
            log_removal_policy=removal,
        )
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
            endpoint_name_prefix=stage.endpoint_name_prefix,
            cost_environment=sweeper_cost_environment(stage),
        )
        # Only a config with a shadow version deploys the worker: without one nothing would ever reach it.
        if any(model.shadows for model in models.models):
            self.shadow: ShadowWorker | None = ShadowWorker(
                self,
                "Shadow",
                router_log_group=router.log_group,
                code=code,
                powertools_layer_arn=stage.powertools_layer_arn,
                endpoint_name_prefix=stage.endpoint_name_prefix,
                log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
                log_level=stage.router.log_level,
                log_removal_policy=removal,
            )
        else:
            self.shadow = None
        # Capture is opt-in per model: only a config where some model captures delivers capture lines.
        self.capture: CaptureDelivery | None = None
        if any(model.capture is not None for model in models.models):
            self.capture = CaptureDelivery(
                self,
                "Capture",
                router_log_group=router.log_group,
                access_log_bucket=storage.access_log_bucket,
                retention_days=stage.capture.retention_days,
                removal_policy=removal,
            )
        enforce_data_perimeter(
            storage,
            function_roles=[router.role, pipeline.results.role, pipeline.sweeper.role],
            async_endpoint_roles=role_arn_pattern(
                partition=self.partition, account=self.account, path=sagemaker_role_path(stage.name, "async")
            ),
            break_glass_role_arn=stage.data_perimeter.break_glass_role_arn,
        )

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
            require_api_key=stage.api.require_api_key,
            removal_policy=removal,
        )

        alarms = RouterAlarms(
            self,
            "Alarms",
            alarms=stage.alarms,
            runbook_base_url=stage.runbook_base_url,
            router_alias=router.alias,
            router_provisioned=stage.router.provisioned_concurrency > 0,
            router_timeout=Duration.seconds(stage.router.timeout_s),
            dead_letter_queue=storage.dead_letter_queue,
            subscriptions=stage.alarm_subscriptions,
            removal_policy=removal,
        )
        # The drift job reads what capture delivers: a stage without capture has nothing to compare.
        self.drift: DriftJob | None = None
        if self.capture is not None:
            self.drift = DriftJob(
                self,
                "Drift",
                baselines=capture_baselines(models.models),
                capture_bucket=self.capture.capture_bucket,
                capture_key=self.capture.capture_key,
                drift=stage.drift,
                code=code,
                powertools_layer_arn=stage.powertools_layer_arn,
                log_retention=RETENTION_BY_DAYS[stage.router.log_retention_days],
                log_level=stage.router.log_level,
                log_removal_policy=removal,
            )
            self.capture.enforce_perimeter(
                drift_role=self.drift.function.role, break_glass_role_arn=stage.data_perimeter.break_glass_role_arn
            )
            # A model with a stack of its own has its drift ticket there; here only those without one.
            for model in models.models:
                if model.capture is not None and model.name not in stage.models:
                    feature_drift_alarm(self.drift, alarms.on_call, model.name)
        StageDashboard(
            self,
            "StageDashboard",
            stage=stage.name,
            router_alias=router.alias,
            router_provisioned=stage.router.provisioned_concurrency > 0,
            rest_api=api.rest_api,
            api_stage_name=stage.name,
            dead_letter_queue=storage.dead_letter_queue,
            router_models=[model.name for model in models.models if model.name not in stage.models],
        )
        # Models without a SageMaker endpoint in this stage have no stack of their own: their SLOs live here.
        for model in models.models:
            if model.name not in stage.models:
                ModelSlo(
                    alarms,
                    f"{pascal(model.name)}Slo",
                    model=model.name,
                    targets=stage.slo.models[model.name],
                    slo=stage.slo,
                    slo_name_prefix=slo_name_prefix(stage.name),
                    on_call=alarms.on_call,
                )
        publish_platform_values(
            self,
            stage.name,
            {
                PlatformValue.ASYNC_BUCKET: storage.bucket.bucket_name,
                PlatformValue.ASYNC_KEY_ARN: storage.key.key_arn,
                PlatformValue.ASYNC_SUCCESS_TOPIC_ARN: storage.success_topic.topic_arn,
                PlatformValue.ASYNC_ERROR_TOPIC_ARN: storage.error_topic.topic_arn,
                **{value: alarms.topics[topic].topic_arn for topic, value in ALARM_TOPIC_VALUES.items()},
            },
        )

        self.router = router
        self.api = api
        self.storage = storage
        self.alarms = alarms
        self.pipeline = pipeline
        self._outputs(stage)

    def _outputs(self, stage: StageConfig) -> None:
        CfnOutput(self, "ApiUrl", value=self.api.rest_api.url, description="Base URL of the inference API (OIP /v2)")
        CfnOutput(self, "RouterAlias", value=self.router.alias.function_arn, description="The router's live alias")
        CfnOutput(self, "AsyncBucket", value=self.storage.bucket.bucket_name)
        CfnOutput(self, "ResultQueueUrl", value=self.storage.queue.queue_url)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.storage.dead_letter_queue.queue_url)
        CfnOutput(self, "JobTable", value=self.storage.job_table.table_name)
        CfnOutput(self, "EndpointNamePrefix", value=stage.endpoint_name_prefix)
        if self.capture is not None:
            CfnOutput(
                self,
                "CaptureBucket",
                value=self.capture.capture_bucket.bucket_name,
                description="Captured requests (capture/model=<m>/date=<d>/) and drift reports (reports/drift/)",
            )
        for topic_name, topic in self.alarms.topics.items():
            CfnOutput(
                self, f"{pascal(topic_name)}TopicArn", value=topic.topic_arn, description=f"Alarm topic: {topic_name}"
            )
        if self.api.api_key is not None:
            CfnOutput(
                self,
                "ApiKeyId",
                value=self.api.api_key.key_id,
                description="aws apigateway get-api-key --include-value --api-key <id> prints the key",
            )
