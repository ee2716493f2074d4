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


def test_router_cold_path_traces_without_the_xray_sdk() -> None:
    """Active tracing is the Lambda service's (TracingConfig Active, tests/infra); the X-Ray SDK would add its
    import and patching to every cold start, and nothing in the router needs subsegments of its own.
    (Powertools' package loads its Tracer module, which imports the SDK only when a Tracer is made.)"""
    loaded = run(
        "import sys, functions.handlers.router.handler; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'aws_xray_sdk'))"
    )
    assert loaded == "[]"


def test_deferred_package_still_imports_fully_on_demand() -> None:
    code = (
        "import functions.handlers.router.handler as h; "
        "from aws_lambda_powertools.event_handler import AppSyncResolver, APIGatewayRestResolver; "
        "print(AppSyncResolver.__name__, type(h.app) is APIGatewayRestResolver)"
    )
    assert run(code) == "AppSyncResolver True"
