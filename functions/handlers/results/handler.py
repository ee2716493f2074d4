"""Result Lambda entry point: settles async jobs from SageMaker's success and error notifications (SNS ->
SQS). Built once at cold start from the environment; the wiring is functions/handlers/results/app.py."""

from __future__ import annotations

from functions.adapters.async_service import async_service_from_env
from functions.handlers.results.app import create_handler

lambda_handler = create_handler(async_service_from_env("result handler"))
