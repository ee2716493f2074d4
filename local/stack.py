"""The whole system on one machine: the local SageMaker runtime serving every configured endpoint and the
local API in front of the router handler, wired the way the deployed stack wires them."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from functions.common.config import ModelsConfig, load_models_config
from functions.serving.onnx_model import OnnxModel
from functions.serving.service import InvocationService
from local.api_gateway import LocalApiGateway
from local.sagemaker_runtime import REGION, LocalSageMakerRuntime

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
# Fake credentials: local mode must never reach a real AWS account, whatever the shell has set.
LOCAL_AWS_ENVIRONMENT: Final[dict[str, str]] = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def serverless_endpoints(config: ModelsConfig, intra_op_threads: int = 1) -> dict[str, InvocationService]:
    """One serving container per serverless endpoint in the config, running the model's artifact."""
    endpoints: dict[str, InvocationService] = {}
    for model in config.models:
        if model.route.serverless_endpoint is None:
            continue
        if model.artifact is None:
            raise ValueError(
                f"{config.source}: model {model.name!r} has a serverless route but no artifact to serve locally"
            )
        onnx_model = OnnxModel(model, REPO_ROOT / model.artifact, intra_op_threads=intra_op_threads)
        endpoints[model.route.serverless_endpoint] = InvocationService(onnx_model)
    return endpoints


@dataclass
class LocalStack:
    runtime: LocalSageMakerRuntime
    api: LocalApiGateway
    handler_module: Any
    owns_runtime: bool = True

    def stop(self) -> None:
        self.api.stop()
        if self.owns_runtime:
            self.runtime.stop()


def start_local_stack(
    *,
    api_port: int = 3000,
    runtime_port: int = 0,
    config_path: str | None = None,
    runtime: LocalSageMakerRuntime | None = None,
) -> LocalStack:
    """Start the runtime (unless one is given) and the API in background threads; the router module is
    imported after the environment points boto3 at the runtime, as the Lambda runtime would configure it."""
    owns_runtime = runtime is None
    if runtime is None:
        config = load_models_config(config_path)
        runtime = LocalSageMakerRuntime(serverless_endpoints(config), port=runtime_port).start()
    os.environ.update(LOCAL_AWS_ENVIRONMENT)
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime.url
    if config_path is not None:
        os.environ["MODELS_CONFIG_PATH"] = config_path
    handler_module = importlib.import_module("functions.router.handler")
    api = LocalApiGateway(handler_module.lambda_handler, port=api_port).start()
    return LocalStack(runtime, api, handler_module, owns_runtime)
