"""ModelEndpoint: one model's SageMaker model, its serverless endpoint and/or its async GPU endpoint.

Endpoint names are physical, because the router composes them (``ENDPOINT_NAME_PREFIX`` + the route's
endpoint name); endpoint *config* and model names are left to CloudFormation, because every
``ServerlessConfig`` change replaces the endpoint config and a fixed name would make that replacement fail
(docs/architecture.md, 'What serverless endpoints cannot do'). The endpoint itself is then updated in place
to the new config.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from functions.config.model_types import ModelConfig
from infra.config.formats import S3_URL_PATTERN
from infra.config.types import AsyncEndpointConfig, EndpointDeploymentConfig, ServerlessEndpointConfig
from infra.constructs.async_scaling import AsyncInstanceScaling, variant_resource_id
from infra.constructs.async_storage_ref import AsyncStorageRef
from infra.constructs.endpoint_deployment import EndpointDeployment
from infra.constructs.endpoint_role import grant_image_pull, grant_logging, grant_object_read

VARIANT_NAME: Final[str] = "AllTraffic"
# Families whose instances carry NVMe instance storage: SageMaker rejects an endpoint-config KmsKeyId for them
# (the local volume is encrypted by the hardware). See CreateEndpointConfig, KmsKeyId.
INSTANCE_STORAGE_FAMILIES: Final[frozenset[str]] = frozenset(
    {"c5d", "m5d", "r5d", "c6id", "m6id", "r6id", "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "p5e", "trn1"}
)
# Application Auto Scaling uses this service-linked role for SageMaker; naming it in the template makes
# CloudFormation create it when missing instead of CDK creating an unused role.
SCALING_ROLE_PATH: Final[str] = (
    "role/aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
    "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"
)


def has_instance_storage(instance_type: str) -> bool:
    return instance_type.split(".")[1] in INSTANCE_STORAGE_FAMILIES


class ModelEndpoint(Construct):
    """A serverless endpoint and/or an async endpoint scaled from zero, each with its own model and role.

    Props (keyword-only):
        model: the model's entry in the model config; its route decides which endpoints exist, its
            ``batching`` block becomes the container's ``SERVING_*`` environment.
        endpoint_name_prefix: prepended to the route's endpoint names (the router's ENDPOINT_NAME_PREFIX).
        serverless_role_path / async_role_path: the IAM paths of the two endpoints' execution roles.
        image_uri / image_asset: the serving container, as an ECR URI (``{account}`` / ``{region}`` are filled
            in at deploy) or an image asset CDK builds at deploy time.
        async_image_uri / async_image_asset: the async endpoint's (GPU) container; default: the same image.
        model_data_asset / model_data_url: the model.tar.gz, as an asset or an s3:// URL (one, or neither when
            the image carries the model).
        serverless: sizing of the serverless endpoint; required iff the route has a serverless endpoint.
        async_inference: sizing of the async endpoint; required iff the route has an async endpoint.
        async_storage: the platform's bucket, topics and key for async results; required with ``async_inference``.

    Attributes (None when the route has no such endpoint): ``serverless_role``, ``model``,
    ``serverless_endpoint`` / ``serverless_endpoint_name``, ``async_role``, ``async_model``, ``async_endpoint`` /
    ``async_endpoint_name``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: ModelConfig,
        endpoint_name_prefix: str,
        serverless_role_path: str,
        async_role_path: str,
        image_uri: str = "",
        image_asset: ecr_assets.DockerImageAsset | None = None,
        async_image_uri: str = "",
        async_image_asset: ecr_assets.DockerImageAsset | None = None,
        model_data_asset: s3_assets.Asset | None = None,
        model_data_url: str | None = None,
        serverless: ServerlessEndpointConfig | None = None,
        async_inference: AsyncEndpointConfig | None = None,
        async_storage: AsyncStorageRef | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._validate(
            construct_id=construct_id,
            model=model,
            image_uri=image_uri,
            image_asset=image_asset,
            model_data_asset=model_data_asset,
            model_data_url=model_data_url,
            serverless=serverless,
            async_inference=async_inference,
            async_storage=async_storage,
        )

        # One role per endpoint kind: only the async endpoint may read inputs, write results and publish to the
        # result topics, and the platform's policies admit it by its IAM path (infra/stacks/naming.py).
        self._model_data = self._model_data_url(model_data_asset, model_data_url)
        # The container learns its batching from its environment only (not from signature.json), so a
        # batching change replaces the CfnModel and nothing else does short of the image or the artifact.
        self._environment = model.batching.environment()
        self.serverless_role: iam.Role | None = None
        self.model: sagemaker.CfnModel | None = None
        self.serverless_endpoint: sagemaker.CfnEndpoint | None = None
        self.serverless_endpoint_name: str | None = None
        if serverless is not None and model.route.serverless_endpoint is not None:
            self.serverless_endpoint_name = f"{endpoint_name_prefix}{model.route.serverless_endpoint}"
            self.serverless_role = self._role(
                "ServerlessRole", serverless_role_path, model, self.serverless_endpoint_name, model_data_asset
            )
            # Serverless Inference does not support network isolation (SageMaker's "feature exclusions" for
            # serverless endpoints): CreateEndpoint would fail, so only the async model is isolated.
            self.model = self._cfn_model("Model", self.serverless_role, image_uri, image_asset, isolated=False)
            self.serverless_endpoint = self._serverless(self.serverless_endpoint_name, self.model, serverless)

        self.async_role: iam.Role | None = None
        self.async_model: sagemaker.CfnModel | None = None
        self.async_endpoint: sagemaker.CfnEndpoint | None = None
        self.async_endpoint_name: str | None = None
        if async_inference is not None and async_storage is not None and model.route.async_endpoint is not None:
            self.async_endpoint_name = f"{endpoint_name_prefix}{model.route.async_endpoint}"
            self.async_role = self._role(
                "AsyncRole", async_role_path, model, self.async_endpoint_name, model_data_asset
            )
            # The serving container needs no network: SageMaker downloads the model to /opt/ml/model and moves
            # async inputs and outputs between S3 and the container itself.
            own_image = bool(async_image_uri) or async_image_asset is not None
            self.async_model = self._cfn_model(
                "AsyncModel",
                self.async_role,
                async_image_uri if own_image else image_uri,
                async_image_asset if own_image else image_asset,
                isolated=True,
            )
            self.async_endpoint = self._async(
                self.async_endpoint_name, self.async_role, self.async_model, async_inference, async_storage
            )

    @staticmethod
    def _model_data_url(model_data_asset: s3_assets.Asset | None, model_data_url: str | None) -> str | None:
        if model_data_asset is not None:
            return model_data_asset.s3_object_url
        if model_data_url is not None:
            assert S3_URL_PATTERN.match(model_data_url) is not None  # checked by the stage config
        return model_data_url

    def _role(
        self,
        construct_id: str,
        path: str,
        model: ModelConfig,
        endpoint_name: str,
        model_data_asset: s3_assets.Asset | None,
    ) -> iam.Role:
        role = iam.Role(
            self,
            construct_id,
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            path=path,
            description=f"SageMaker execution role for endpoint {endpoint_name} (model {model.name})",
        )
        grant_logging(role, [endpoint_name])
        if model_data_asset is not None:
            grant_object_read(role, model_data_asset.s3_bucket_name, model_data_asset.s3_object_key)
        elif self._model_data is not None:
            parsed = S3_URL_PATTERN.match(self._model_data)
            assert parsed is not None  # checked by the stage config
            grant_object_read(role, parsed["bucket"], parsed["key"])
        return role

    @staticmethod
    def _validate(
        *,
        construct_id: str,
        model: ModelConfig,
        image_uri: str,
        image_asset: ecr_assets.DockerImageAsset | None,
        model_data_asset: s3_assets.Asset | None,
        model_data_url: str | None,
        serverless: ServerlessEndpointConfig | None,
        async_inference: AsyncEndpointConfig | None,
        async_storage: AsyncStorageRef | None,
    ) -> None:
        where = f"ModelEndpoint {construct_id} (model {model.name!r})"
        if model_data_asset is not None and model_data_url is not None:
            raise ValueError(f"{where}: give model_data_asset or model_data_url, not both")
        if (serverless is None) != (model.route.serverless_endpoint is None):
            raise ValueError(
                f"{where}: serverless sizing is required exactly when the route has a serverless endpoint "
                f"(route.serverless_endpoint={model.route.serverless_endpoint!r})"
            )
        if (async_inference is None) != (model.route.async_endpoint is None):
            raise ValueError(
                f"{where}: async sizing is required exactly when the route has an async endpoint "
                f"(route.async_endpoint={model.route.async_endpoint!r})"
            )
        if async_inference is not None and async_storage is None:
            raise ValueError(f"{where}: an async endpoint needs async_storage for its results and notifications")

    def _cfn_model(
        self,
        construct_id: str,
        role: iam.Role,
        image_uri: str,
        asset: ecr_assets.DockerImageAsset | None,
        *,
        isolated: bool,
    ) -> sagemaker.CfnModel:
        stack = Stack.of(self)
        if asset is not None:
            image = asset.image_uri
            asset.repository.grant_pull(role)
        else:
            image = image_uri.replace("{account}", stack.account).replace("{region}", stack.region)
            grant_image_pull(role, image_uri)
        model = sagemaker.CfnModel(
            self,
            construct_id,
            execution_role_arn=role.role_arn,
            enable_network_isolation=isolated,
            primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                image=image, model_data_url=self._model_data, mode="SingleModel", environment=self._environment
            ),
        )
        # SageMaker checks the role can pull the image and read the model while creating the endpoint.
        model.node.add_dependency(role)
        return model

    def _serverless(
        self, endpoint_name: str, model: sagemaker.CfnModel, sizing: ServerlessEndpointConfig
    ) -> sagemaker.CfnEndpoint:
        config = sagemaker.CfnEndpointConfig(
            self,
            "ServerlessConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.attr_model_name,
                    serverless_config=sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
                        memory_size_in_mb=sizing.memory_mb,
                        max_concurrency=sizing.max_concurrency,
                        provisioned_concurrency=sizing.provisioned_concurrency or None,
                    ),
                )
            ],
        )
        endpoint = sagemaker.CfnEndpoint(
            self,
            "ServerlessEndpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=self._guardrail("ServerlessDeployment", endpoint_name, sizing.deployment),
        )
        if sizing.pc_autoscaling is not None:
            target = appscaling.ScalableTarget(
                self,
                "ProvisionedConcurrencyTarget",
                service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
                resource_id=variant_resource_id(endpoint_name, VARIANT_NAME),
                scalable_dimension="sagemaker:variant:DesiredProvisionedConcurrency",
                min_capacity=sizing.pc_autoscaling.min_capacity,
                max_capacity=sizing.pc_autoscaling.max_capacity,
                role=self._scaling_role("ProvisionedConcurrencyScalingRole"),
            )
            target.node.add_dependency(endpoint)
            target.scale_to_track_metric(
                "ProvisionedConcurrencyUtilization",
                target_value=sizing.pc_autoscaling.target_utilization,
                predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_PROVISIONED_CONCURRENCY_UTILIZATION,
            )
        return endpoint

    def _async(
        self,
        endpoint_name: str,
        role: iam.Role,
        model: sagemaker.CfnModel,
        sizing: AsyncEndpointConfig,
        storage: AsyncStorageRef,
    ) -> sagemaker.CfnEndpoint:
        storage.grant_endpoint(role, endpoint_name)
        config = sagemaker.CfnEndpointConfig(
            self,
            "AsyncConfig",
            production_variants=[
                sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                    variant_name=VARIANT_NAME,
                    model_name=model.attr_model_name,
                    instance_type=sizing.instance_type,
                    # SageMaker will not create an async endpoint at 0 instances; autoscaling takes it to 0 once idle.
                    initial_instance_count=1,
                )
            ],
            async_inference_config=sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
                client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                    max_concurrent_invocations_per_instance=sizing.max_concurrent_invocations_per_instance
                ),
                output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                    s3_output_path=storage.output_path(endpoint_name),
                    s3_failure_path=storage.failure_path(endpoint_name),
                    kms_key_id=storage.key_arn,
                    notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                        success_topic=storage.success_topic_arn,
                        error_topic=storage.error_topic_arn,
                        # No include_inference_response_in: nothing reads a response inline (the result handler
                        # records the output location; GET /v2/jobs reads S3), and up to 128 KB more per
                        # notification would only weigh on the queue, the dead-letter queue and redrive.
                    ),
                ),
            ),
            kms_key_id=None if has_instance_storage(sizing.instance_type) else storage.key_arn,
        )
        # Endpoint creation fails if the role cannot yet publish to the topics or use the key.
        config.node.add_dependency(role)
        endpoint = sagemaker.CfnEndpoint(
            self,
            "AsyncEndpoint",
            endpoint_name=endpoint_name,
            endpoint_config_name=config.attr_endpoint_config_name,
            deployment_config=self._guardrail("AsyncDeployment", endpoint_name, sizing.deployment),
        )

        self.async_scaling = AsyncInstanceScaling(
            self,
            "AsyncScaling",
            endpoint=endpoint,
            endpoint_name=endpoint_name,
            variant_name=VARIANT_NAME,
            sizing=sizing,
            scaling_role=self._scaling_role("AsyncScalingRole"),
        )
        self.wake_alarm = self.async_scaling.wake_alarm
        return endpoint

    def _guardrail(
        self, construct_id: str, endpoint_name: str, config: EndpointDeploymentConfig | None
    ) -> sagemaker.CfnEndpoint.DeploymentConfigProperty | None:
        """Blue/green traffic shifting and rollback alarms on VARIANT_NAME, the variant both endpoint configs name:
        SageMaker requires an update's new config to keep the old variant name (deployment guardrails,
        "Exclusions"), so the variant is never renamed."""
        if config is None:
            return None
        deployment = EndpointDeployment(
            self,
            construct_id,
            endpoint_name=endpoint_name,
            variant_name=VARIANT_NAME,
            config=config,
        )
        return deployment.deployment_config

    def _scaling_role(self, construct_id: str) -> iam.IRole:
        stack = Stack.of(self)
        return iam.Role.from_role_arn(
            self, construct_id, f"arn:{stack.partition}:iam::{stack.account}:{SCALING_ROLE_PATH}", mutable=False
        )
