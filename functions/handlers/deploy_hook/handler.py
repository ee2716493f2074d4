"""Pre-traffic hook Lambda entry point: built once at cold start from the environment; the wiring is
functions/handlers/deploy_hook/app.py. The CDK sets ROUTER_FUNCTION_NAME, ROUTER_FUNCTION_VERSION (the
version this deployment shifts to) and SMOKE_CALLER_ARN (the hook's role)."""

from __future__ import annotations

import os
from typing import Any, Final

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config

from functions.config.models import load_models_config
from functions.handlers.deploy_hook.app import create_handler

DEPLOY_HOOK_SERVICE: Final[str] = "inference-router-deploy-hook"
# A smoke request waits for the router's whole answer (its timeout is under API Gateway's 29 s): no retries,
# so one slow answer is not sent twice.
INVOKE_CONFIG: Final[Config] = Config(
    connect_timeout=5, read_timeout=60, retries={"mode": "standard", "max_attempts": 1}
)

logger = Logger(service=DEPLOY_HOOK_SERVICE)


def log(message: str, fields: dict[str, Any]) -> None:
    logger.info(message, extra=fields)


lambda_handler = create_handler(
    load_models_config(os.environ.get("MODELS_CONFIG_PATH") or None),
    lambda_client=boto3.client("lambda", config=INVOKE_CONFIG),
    codedeploy_client=boto3.client("codedeploy"),
    function_name=os.environ["ROUTER_FUNCTION_NAME"],
    version=os.environ["ROUTER_FUNCTION_VERSION"],
    caller_arn=os.environ.get("SMOKE_CALLER_ARN") or None,
    log=log,
)
