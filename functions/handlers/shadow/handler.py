"""Shadow worker Lambda entry point: replays the router's sampled requests (delivered by a CloudWatch Logs
subscription filter on its log group) against each model's shadow version and counts the agreement. Built once
at cold start from the environment; the wiring is functions/handlers/shadow/app.py."""

from __future__ import annotations

import os

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.models import load_models_config
from functions.domain.shadow import ShadowRunner
from functions.handlers.shadow.app import create_handler, timeout_ms

lambda_handler = create_handler(
    ShadowRunner(
        load_models_config(os.environ.get("MODELS_CONFIG_PATH") or None),
        os.environ.get("ENDPOINT_NAME_PREFIX", ""),
        SageMakerBackend(),
        timeout_ms(),
    )
)
