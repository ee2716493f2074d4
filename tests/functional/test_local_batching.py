"""Local mode batches each model as its ``batching`` block says, as the deployed container's environment does:
the serverless endpoints of the local SageMaker runtime and its async endpoints alike."""

from __future__ import annotations

import json
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions.config.model_types import ModelsConfig
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from local.async_endpoints import async_endpoint_specs
from local.aws import AsyncResources
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import serverless_endpoints

CONCURRENT = 8
ROUNDS = 20  # stacking depends on thread timing: a few rounds of concurrent requests before giving up


def config_with(tmp_path: Path, batching: dict[str, Any] | None) -> ModelsConfig:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    if batching is not None:
        document["models"][0]["batching"] = batching
    path = tmp_path / "models.json"
    path.write_text(json.dumps(document))
    return load_models_config(path)


def stats(service: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(service.batching_stats().body)
    return document


def resources() -> AsyncResources:
    return AsyncResources(
        bucket="bucket",
        input_prefix="input/",
        output_path="s3://bucket/output/",
        failure_path="s3://bucket/failure/",
        success_topic_arn="arn:aws:sns:us-east-1:000000000000:success",
        error_topic_arn="arn:aws:sns:us-east-1:000000000000:error",
        result_queue_url="http://127.0.0.1/queue",
        result_queue_arn="arn:aws:sqs:us-east-1:000000000000:results",
        dead_letter_queue_url="http://127.0.0.1/dlq",
        dead_letter_queue_arn="arn:aws:sqs:us-east-1:000000000000:dlq",
        job_table="jobs",
        idempotency_table="keys",
        max_receive_count=3,
    )


def test_local_serverless_endpoint_batches_with_the_configured_settings(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"max_batch_size": 4, "max_queue_delay_ms": 20})
    endpoints = serverless_endpoints(config)
    service = endpoints["iris"]
    assert {key: stats(service)[key] for key in ("enabled", "max_batch_size", "max_queue_delay_ms")} == {
        "enabled": True,
        "max_batch_size": 4,
        "max_queue_delay_ms": 20.0,
    }
    runtime = LocalSageMakerRuntime(endpoints).start()
    try:
        bodies = [
            json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [i % 7, 3, 5, 2]}]})
            for i in range(CONCURRENT)
        ]
        barrier = threading.Barrier(CONCURRENT)

        def call(body: str) -> int:
            barrier.wait()
            request = urllib.request.Request(f"{runtime.url}/endpoints/iris/invocations", data=body.encode())
            with urllib.request.urlopen(request, timeout=10) as response:
                return int(response.status)

        for _ in range(ROUNDS):
            with ThreadPoolExecutor(max_workers=CONCURRENT) as pool:
                assert list(pool.map(call, bodies)) == [200] * CONCURRENT
            if stats(service)["largest_batch_requests"] > 1:
                break
        counters = stats(service)
        assert counters["largest_batch_requests"] > 1, f"no two concurrent requests ever shared a run: {counters}"
        assert counters["largest_batch_rows"] <= 4
    finally:
        runtime.stop()
        service.model = None  # stops the batch runner thread


def test_local_endpoints_do_not_batch_a_model_whose_block_switches_it_off(tmp_path: Path) -> None:
    config = config_with(tmp_path, {"enabled": False})
    serverless = serverless_endpoints(config)["iris"]
    asynchronous = async_endpoint_specs(config, resources())["iris-async"].service
    assert stats(serverless)["enabled"] is False
    assert stats(asynchronous)["enabled"] is False


@pytest.mark.parametrize(("batching", "expected"), [(None, (True, 32, 1.0)), ({"max_batch_size": 2}, (True, 2, 1.0))])
def test_local_async_endpoint_batches_with_the_configured_settings(
    tmp_path: Path, batching: dict[str, Any] | None, expected: tuple[bool, int, float]
) -> None:
    service = async_endpoint_specs(config_with(tmp_path, batching), resources())["iris-async"].service
    try:
        counters = stats(service)
        assert (counters["enabled"], counters["max_batch_size"], counters["max_queue_delay_ms"]) == expected
    finally:
        service.model = None
