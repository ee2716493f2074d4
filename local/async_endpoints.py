"""The async endpoints of a model config, served locally: one :class:`AsyncEndpointSpec` per ``async_endpoint``
route, wired to the bucket paths and topics :func:`local.aws.create_async_resources` made (what the
templates' ``AsyncInferenceConfig`` points at)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

from functions.adapters.onnx_model import OnnxModel
from local.sagemaker_runtime import AsyncEndpointSpec
from serving.batching import BatchingSettings
from serving.service import InvocationService

if TYPE_CHECKING:
    from functions.config.model_types import ModelsConfig
    from local.aws import AsyncResources

# Artifacts in the config are relative to the repository root, as local/stack.py resolves them.
REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent


def async_endpoint_specs(
    config: ModelsConfig,
    resources: AsyncResources,
    *,
    max_concurrent_invocations: int = 4,
    intra_op_threads: int = 1,
) -> dict[str, AsyncEndpointSpec]:
    """One async endpoint per model whose route names an ``async_endpoint``, running the model's artifact and
    batching as its ``batching`` block says.

    Example:
        >>> specs = async_endpoint_specs(load_models_config(), resources)
        >>> runtime = LocalSageMakerRuntime(endpoints, async_endpoints=specs, aws_endpoint_url=aws.url)
    """
    specs: dict[str, AsyncEndpointSpec] = {}
    for model in (config_model.for_version(entry) for config_model in config.models for entry in config_model.versions):
        name = model.route.async_endpoint
        if name is None:
            continue
        if model.artifact is None:
            raise ValueError(
                f"{config.source}: model {model.name!r} has an async route but no artifact to serve locally"
            )
        service = InvocationService(
            OnnxModel(model, REPO_ROOT / model.artifact, intra_op_threads=intra_op_threads),
            batching=BatchingSettings.from_config(model.batching),
        )
        specs[name] = AsyncEndpointSpec(
            service,
            # Per endpoint, as the templates configure it (infra/constructs/async_storage.py).
            output_path=f"{resources.output_path}{name}/",
            failure_path=f"{resources.failure_path}{name}/",
            success_topic_arn=resources.success_topic_arn,
            error_topic_arn=resources.error_topic_arn,
            max_concurrent_invocations=max_concurrent_invocations,
        )
    return specs
