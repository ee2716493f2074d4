"""The stage's SageMaker sections: serverless and async endpoint sizes, and each model's image and artifact."""

from __future__ import annotations

from typing import Any

from functions.config.limits import (
    SERVERLESS_MAX_CONCURRENCY,
    SERVERLESS_MEMORY_SIZES_MB,
)
from functions.config.model_types import ModelConfig, ModelsConfig, VersionConfig
from infra.config.endpoint_deployment import read_endpoint_deployment
from infra.config.formats import (
    ECR_IMAGE_PATTERN,
    INSTANCE_TYPE_PATTERN,
    S3_URL_PATTERN,
)
from infra.config.reader import StageReader, deep_merge
from infra.config.types import (
    DEFAULT_ASYNC_INSTANCE_TYPE,
    IMAGE_ASSET,
    AsyncEndpointConfig,
    ModelDeployConfig,
    ProvisionedConcurrencyScaling,
    ServerlessEndpointConfig,
)


def read_serverless_endpoint(reader: StageReader, raw_value: Any, path: str) -> ServerlessEndpointConfig:
    keys = {"memory_mb", "max_concurrency", "provisioned_concurrency", "pc_autoscaling", "deployment"}
    raw = reader.obj(raw_value, path, frozenset(keys))
    memory = reader.field(raw, "memory_mb", path)
    if memory not in SERVERLESS_MEMORY_SIZES_MB or isinstance(memory, bool):
        raise reader.fail(
            f"{path}.memory_mb",
            f"{memory!r} is not one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES_MB))} "
            "(SageMaker serverless memory is 1024-6144 MB in 1024 MB steps)",
        )
    max_concurrency = reader.integer(
        reader.field(raw, "max_concurrency", path), f"{path}.max_concurrency", 1, SERVERLESS_MAX_CONCURRENCY
    )
    provisioned = reader.integer(
        reader.field(raw, "provisioned_concurrency", path), f"{path}.provisioned_concurrency", 0
    )
    if provisioned > max_concurrency:
        raise reader.fail(
            f"{path}.provisioned_concurrency",
            f"{provisioned} is above max_concurrency {max_concurrency}; SageMaker requires provisioned <= max",
        )
    scaling: ProvisionedConcurrencyScaling | None = None
    scaling_raw = raw.get("pc_autoscaling")
    if scaling_raw is not None:
        scaling_path = f"{path}.pc_autoscaling"
        scaling_obj = reader.obj(
            scaling_raw, scaling_path, frozenset({"min_capacity", "max_capacity", "target_utilization"})
        )
        if provisioned == 0:
            raise reader.fail(scaling_path, "needs provisioned_concurrency of at least 1 to scale")
        low = reader.integer(reader.field(scaling_obj, "min_capacity", scaling_path), f"{scaling_path}.min_capacity", 1)
        high = reader.integer(
            reader.field(scaling_obj, "max_capacity", scaling_path), f"{scaling_path}.max_capacity", 1
        )
        if not low <= provisioned <= high:
            raise reader.fail(
                scaling_path,
                f"min_capacity {low} <= provisioned_concurrency {provisioned} <= max_capacity {high} fails",
            )
        if high > max_concurrency:
            raise reader.fail(f"{scaling_path}.max_capacity", f"{high} is above max_concurrency {max_concurrency}")
        target = reader.number(
            reader.field(scaling_obj, "target_utilization", scaling_path),
            f"{scaling_path}.target_utilization",
            0,
            1,
            low_open=True,
        )
        scaling = ProvisionedConcurrencyScaling(low, high, target)
    deployment = raw.get("deployment")
    return ServerlessEndpointConfig(
        memory,
        max_concurrency,
        provisioned,
        scaling,
        None
        if deployment is None
        else read_endpoint_deployment(reader, deployment, f"{path}.deployment", serverless=True),
    )


def read_async_endpoint(reader: StageReader, raw_value: Any, path: str) -> AsyncEndpointConfig:
    keys = {
        "instance_type",
        "max_concurrent_invocations_per_instance",
        "max_instances",
        "backlog_target_per_instance",
        "scale_in_cooldown_s",
        "scale_out_cooldown_s",
        "deployment",
    }
    raw = reader.obj(raw_value, path, frozenset(keys))
    instance_type = reader.string(
        raw.get("instance_type", DEFAULT_ASYNC_INSTANCE_TYPE),
        f"{path}.instance_type",
        INSTANCE_TYPE_PATTERN,
        "a SageMaker instance type like ml.g5.xlarge",
    )
    deployment = raw.get("deployment")
    return AsyncEndpointConfig(
        instance_type=instance_type,
        # SageMaker accepts 1-1000 concurrent invocations per instance for async endpoints.
        max_concurrent_invocations_per_instance=reader.integer(
            reader.field(raw, "max_concurrent_invocations_per_instance", path),
            f"{path}.max_concurrent_invocations_per_instance",
            1,
            1000,
        ),
        max_instances=reader.integer(reader.field(raw, "max_instances", path), f"{path}.max_instances", 1, 100),
        backlog_target_per_instance=reader.number(
            reader.field(raw, "backlog_target_per_instance", path),
            f"{path}.backlog_target_per_instance",
            0,
            10_000,
            low_open=True,
        ),
        scale_in_cooldown_s=reader.integer(
            reader.field(raw, "scale_in_cooldown_s", path), f"{path}.scale_in_cooldown_s", 0, 86_400
        ),
        scale_out_cooldown_s=reader.integer(
            reader.field(raw, "scale_out_cooldown_s", path), f"{path}.scale_out_cooldown_s", 0, 86_400
        ),
        deployment=None
        if deployment is None
        else read_endpoint_deployment(
            reader, deployment, f"{path}.deployment", serverless=False, instance_type=instance_type
        ),
    )


def read_image(reader: StageReader, value: Any, path: str, *, region: str, instance_type: str) -> str:
    if value == IMAGE_ASSET:
        return IMAGE_ASSET
    if isinstance(value, dict):
        return read_dlc_image(reader, value, path, region=region, instance_type=instance_type)
    return reader.string(
        value,
        path,
        ECR_IMAGE_PATTERN,
        f"{IMAGE_ASSET!r} or an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>; "
        "{account}/{region} allowed)",
    )


def read_dlc_image(reader: StageReader, value: dict[str, Any], path: str, *, region: str, instance_type: str) -> str:
    """``{"dlc": {"framework", "version", "py_version"?}}``: an AWS Deep Learning Container, resolved offline."""
    spec = reader.obj(reader.field(reader.obj(value, path, frozenset({"dlc"})), "dlc", path), f"{path}.dlc",
                      frozenset({"framework", "version", "py_version"}))  # fmt: skip
    from infra.image_uris import DlcResolutionError, resolve_dlc_image

    try:
        uri = resolve_dlc_image(
            reader.string(reader.field(spec, "framework", f"{path}.dlc"), f"{path}.dlc.framework"),
            reader.string(reader.field(spec, "version", f"{path}.dlc"), f"{path}.dlc.version"),
            region=region,
            instance_type=instance_type,
            py_version=spec.get("py_version"),
        )
    except DlcResolutionError as error:
        raise reader.fail(f"{path}.dlc", str(error)) from error
    return reader.string(uri, f"{path}.dlc", ECR_IMAGE_PATTERN, "an ECR image URI")


def sagemaker_versions(model: ModelConfig) -> tuple[VersionConfig, ...]:
    """The model's versions that run on SageMaker endpoints (a shadow's too: the shadow worker invokes it)."""
    return tuple(entry for entry in model.versions if entry.route.serverless_endpoint or entry.route.async_endpoint)


def declared_endpoints(models: ModelsConfig) -> tuple[dict[str, str], dict[str, str]]:
    """Every version's serverless and async endpoint names, each mapped to its model's name."""
    serverless: dict[str, str] = {}
    async_endpoints: dict[str, str] = {}
    for model in models.models:
        for entry in model.versions:
            if entry.route.serverless_endpoint:
                serverless[entry.route.serverless_endpoint] = model.name
            if entry.route.async_endpoint:
                async_endpoints[entry.route.async_endpoint] = model.name
    return serverless, async_endpoints


def deployed_models(models: ModelsConfig) -> dict[str, str]:
    """The models with a version on a SageMaker endpoint (each gets a model stack), by name."""
    return {model.name: model.name for model in models.models if sagemaker_versions(model)}


def async_instance_type(models: ModelsConfig, async_endpoints: dict[str, AsyncEndpointConfig], name: str) -> str:
    model = models.model(name)
    endpoint = model.route.async_endpoint if model is not None else None
    return async_endpoints[endpoint].instance_type if endpoint in async_endpoints else DEFAULT_ASYNC_INSTANCE_TYPE


def read_model_deploy(
    reader: StageReader,
    raw_value: Any,
    path: str,
    *,
    region: str,
    serverless_type: str,
    async_type: str,
    versions: tuple[str, ...] = (),
) -> ModelDeployConfig:
    """``versions``: the model's versions on SageMaker endpoints (each packed with its own signature)."""
    raw = reader.obj(raw_value, path, frozenset({"image", "async_image", "model_data_url"}))
    data_url = raw.get("model_data_url")
    if data_url is not None and len(versions) > 1:
        # The container answers model_version from its artifact's signature.json: one artifact for all the
        # model's endpoints would have every version answer as the same one.
        raise reader.fail(
            f"{path}.model_data_url",
            f"is one artifact for the model, but versions {', '.join(versions)} each run on their own endpoint "
            "and must each answer their own model_version: leave model_data_url out so each version is packed "
            "from its artifact",
        )
    raw_image = reader.field(raw, "image", path)
    raw_async_image = raw.get("async_image", raw_image)
    # Both containers get the same ModelDataUrl, and the packed model.tar.gz (model.onnx + signature.json,
    # infra/model_package.py) is only read by this repo's serving image: a DLC serves its own artifact layout
    # and request format, so it needs an artifact of the user's that speaks the container contract.
    dlc = [name for name, value in (("image", raw_image), ("async_image", raw_async_image)) if isinstance(value, dict)]
    if dlc and data_url is None:
        raise reader.fail(
            f"{path}.{dlc[0]}",
            "a Deep Learning Container does not read the packed model.tar.gz (model.onnx + signature.json) nor "
            "answer /invocations with Open Inference Protocol JSON by itself: set model_data_url to an artifact "
            "whose inference code serves that contract (README, 'What runs in SageMaker'), or use 'asset'",
        )
    image = read_image(reader, raw_image, f"{path}.image", region=region, instance_type=serverless_type)
    return ModelDeployConfig(
        image=image,
        async_image=read_image(reader, raw_async_image, f"{path}.async_image", region=region, instance_type=async_type),
        model_data_url=None
        if data_url is None
        else reader.string(data_url, f"{path}.model_data_url", S3_URL_PATTERN, "an s3://bucket/key URL"),
    )


def endpoint_map(
    reader: StageReader,
    raw: dict[str, Any],
    *,
    key: str,
    defaults_key: str,
    declared: dict[str, str],
    unknown_message: str,
) -> dict[str, dict[str, Any]]:
    """Per-endpoint knobs: defaults merged with overrides, for exactly the endpoints the model config declares."""
    overrides = reader.obj(raw.get(key, {}), key)
    defaults = reader.obj(raw.get(defaults_key, {}), defaults_key)
    for name in overrides:
        if name not in declared:
            raise reader.fail(f"{key}.{name}", unknown_message.format(name=name))
    merged: dict[str, dict[str, Any]] = {}
    for name in declared:
        override = overrides.get(name, {})
        reader.obj(override, f"{key}.{name}")
        merged[name] = deep_merge(defaults, override)
    return merged
