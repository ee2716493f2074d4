"""ModelStack: one model's SageMaker endpoints, their scaling and their alarms, in a stack of its own.

Its SLOs and burn-rate pages live here too, so they come and go with the model.

One stack per model, not groups or nested stacks: a model is then added, changed, deployed or removed
without CloudFormation touching any other model (a group would update its neighbours' stack; nested stacks
deploy only through their parent), and one stack holds ~20 resources however many models the stage has.
It knows the platform only by values CloudFormation resolves at deploy time (SSM parameters) and by names
derived from the stage config, so no stack imports another's exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from functions.config.model_types import ModelConfig, ModelsConfig
from infra.config.costing import serverless_size_parameter
from infra.config.endpoints import sagemaker_versions
from infra.config.instances import ImageVariant, image_variant
from infra.config.types import IMAGE_ASSET, ModelDeployConfig, StageConfig
from infra.constructs.async_storage_ref import AsyncStorageRef
from infra.constructs.drift import feature_drift_alarm
from infra.constructs.endpoint_alarms import EndpointAlarms
from infra.constructs.model_dashboard import ModelDashboard
from infra.constructs.model_endpoint import ModelEndpoint
from infra.constructs.on_call_alarm import pascal
from infra.constructs.platform_parameters import PlatformValue, PlatformValues
from infra.constructs.slo import ModelSlo, slo_name_prefix
from infra.model_package import DEFAULT_OUTPUT_DIR, package_model
from infra.stacks.naming import sagemaker_role_path
from infra.stacks.stage_values import tag_stage

REPO_ROOT: Final[Path] = Path(__file__).resolve().parents[2]
SERVING_DOCKERFILES: Final[dict[ImageVariant, str]] = {
    "cpu": "docker/serving/Dockerfile",
    "gpu": "docker/serving-gpu/Dockerfile",
}


class ModelStack(Stack):
    """Props (keyword-only):
        models: the model and route config (for packaging each version's artifact with its signature).
        model: this stack's model; some version of it must run on SageMaker and it needs an entry in the stage's
            models.
        stage: the checked stage config.
        model_package_dir: where model.tar.gz archives are written before CDK stages them as assets.

    Attributes: ``endpoints`` (version -> its ModelEndpoint, for every version on SageMaker), ``endpoint`` (the
    first of them: the primary's when it runs on SageMaker), ``alarms`` (EndpointAlarms, and the model's
    ``feature_drift`` ticket when it captures), ``slo`` (the model's SLOs and pages).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        models: ModelsConfig,
        model: ModelConfig,
        stage: StageConfig,
        model_package_dir: Path = DEFAULT_OUTPUT_DIR,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        deploy = stage.models.get(model.name)
        if deploy is None:
            raise ValueError(f"model {model.name!r} has no SageMaker route in stage {stage.name!r}: it needs no stack")
        tag_stage(self, stage)
        self._images: dict[ImageVariant, ecr_assets.DockerImageAsset] = {}
        platform = PlatformValues(self, stage.name)
        # One ModelEndpoint per version on SageMaker, a shadow's included (the shadow worker invokes it). The
        # primary keeps the construct ids a model without versions has, so adding a version leaves its
        # resources as they are.
        self.endpoints: dict[str, ModelEndpoint] = {}
        for entry in sagemaker_versions(model):
            suffix = "" if entry.version == model.version else f"V{pascal(entry.version)}"
            self.endpoints[entry.version] = self._version_endpoint(
                f"{pascal(model.name)}{suffix}",
                models=models,
                model=model,
                served=model.for_version(entry),
                stage=stage,
                deploy=deploy,
                platform=platform,
                model_package_dir=model_package_dir,
            )
        self.endpoint = next(iter(self.endpoints.values()))
        serverless_endpoints: list[tuple[str, bool]] = []
        async_endpoints: list[str] = []
        for version, endpoint in self.endpoints.items():
            route = model.version_by_name[version].route
            if endpoint.serverless_endpoint_name is not None and route.serverless_endpoint is not None:
                sizing = stage.serverless_endpoints[route.serverless_endpoint]
                serverless_endpoints.append((endpoint.serverless_endpoint_name, sizing.provisioned_concurrency > 0))
                self._publish_size(route.serverless_endpoint, stage)
            if endpoint.async_endpoint_name is not None:
                async_endpoints.append(endpoint.async_endpoint_name)
        self.alarms = EndpointAlarms(
            self,
            "Alarms",
            alarms=stage.alarms,
            runbook_base_url=stage.runbook_base_url,
            topic_arn=platform.alarm_topic_arn,
            serverless_endpoints=serverless_endpoints,
            async_endpoints=async_endpoints,
        )
        self.slo = ModelSlo(
            self,
            "Slo",
            model=model.name,
            targets=stage.slo.models[model.name],
            slo=stage.slo,
            slo_name_prefix=slo_name_prefix(stage.name),
            on_call=self.alarms.on_call,
        )
        # The drift job (in the platform) publishes MaxFeaturePsi by model; the model's ticket on it lives here.
        if model.capture is not None:
            feature_drift_alarm(self.alarms, self.alarms.on_call, model.name)
        ModelDashboard(
            self,
            f"{pascal(model.name)}Dashboard",
            stage=stage.name,
            model=model.name,
            serverless_endpoints=serverless_endpoints,
            async_endpoints=async_endpoints,
            shadow_version=model.shadows[0].version if model.shadows else None,
        )
        for endpoint_name in (*(name for name, _ in serverless_endpoints), *async_endpoints):
            CfnOutput(
                self, f"Endpoint{pascal(endpoint_name)}", value=endpoint_name, description="SageMaker endpoint name"
            )

    def _publish_size(self, endpoint: str, stage: StageConfig) -> None:
        """The endpoint's size for the router's cost per request, here rather than in the router's environment:
        resizing or adding a model then changes this stack alone."""
        name, value = serverless_size_parameter(stage, endpoint)
        ssm.StringParameter(
            self,
            f"ServerlessSize{pascal(endpoint)}",
            parameter_name=name,
            string_value=value,
            description="Read by the router to cost each call of this serverless endpoint",
        )

    def _version_endpoint(
        self,
        construct_prefix: str,
        *,
        models: ModelsConfig,
        model: ModelConfig,
        served: ModelConfig,
        stage: StageConfig,
        deploy: ModelDeployConfig,
        platform: PlatformValues,
        model_package_dir: Path,
    ) -> ModelEndpoint:
        """The endpoints of one version (``served``: the model as that version serves it), with its own package:
        its artifact and a signature naming the version, which its container answers as ``model_version``."""
        serverless_name = served.route.serverless_endpoint
        async_name = served.route.async_endpoint
        async_sizing = stage.async_endpoints[async_name] if async_name else None
        asset: s3_assets.Asset | None = None
        if deploy.model_data_url is None:
            archive = package_model(models, model, version=served.version, output_dir=model_package_dir)
            asset = s3_assets.Asset(self, f"{construct_prefix}ModelData", path=str(archive))
        return ModelEndpoint(
            self,
            f"{construct_prefix}Endpoint",
            model=served,
            endpoint_name_prefix=stage.endpoint_name_prefix,
            serverless_role_path=sagemaker_role_path(stage.name, "serverless"),
            async_role_path=sagemaker_role_path(stage.name, "async"),
            image_uri="" if deploy.image == IMAGE_ASSET else deploy.image,
            image_asset=self._serving_image("cpu") if deploy.image == IMAGE_ASSET else None,
            async_image_uri="" if deploy.async_image == IMAGE_ASSET else deploy.async_image,
            async_image_asset=self._serving_image(image_variant(async_sizing.instance_type))
            if async_sizing is not None and deploy.async_image == IMAGE_ASSET
            else None,
            model_data_asset=asset,
            model_data_url=deploy.model_data_url,
            serverless=stage.serverless_endpoints[serverless_name] if serverless_name else None,
            async_inference=async_sizing,
            async_storage=AsyncStorageRef(
                bucket_name=platform.get(PlatformValue.ASYNC_BUCKET),
                key_arn=platform.get(PlatformValue.ASYNC_KEY_ARN),
                success_topic_arn=platform.get(PlatformValue.ASYNC_SUCCESS_TOPIC_ARN),
                error_topic_arn=platform.get(PlatformValue.ASYNC_ERROR_TOPIC_ARN),
                bucket_nag_text="<PlatformAsyncBucketName>",
            )
            if async_name
            else None,
        )

    def _serving_image(self, variant: ImageVariant) -> ecr_assets.DockerImageAsset:
        """The repo's serving image, one asset per variant (the model comes from S3).

        CDK records the asset at synth and builds it only when ``cdk deploy`` publishes assets, so synth never
        needs Docker; every model stack names the same image, so it is built and pushed once. SageMaker runs
        x86_64 images.
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
