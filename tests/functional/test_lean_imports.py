"""The router's cold path loads only what a request needs (checked in fresh interpreters)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "x",
    "AWS_SECRET_ACCESS_KEY": "x",
    "PATH": "/usr/bin:/bin",
}


def run(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, env=ENV
    ).stdout.strip()


def test_router_cold_path_skips_unused_resolvers_and_onnxruntime() -> None:
    loaded = run(
        "import sys, functions.handlers.router.handler; "
        "print(sorted(m for m in ('asyncio', 'onnxruntime', 'numpy', 'aws_lambda_powertools.event_handler.appsync', "
        "'aws_lambda_powertools.event_handler.bedrock_agent', 'aws_lambda_powertools.utilities.data_classes.sqs_event', "
        "'pydantic', 's3transfer') if m in sys.modules))"
    )
    assert loaded == "[]"


def test_deferred_package_still_imports_fully_on_demand() -> None:
    code = (
        "import functions.handlers.router.handler as h; "
        "from aws_lambda_powertools.event_handler import AppSyncResolver, APIGatewayRestResolver; "
        "print(AppSyncResolver.__name__, type(h.app) is APIGatewayRestResolver)"
    )
    assert run(code) == "AppSyncResolver True"
