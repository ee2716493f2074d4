"""The in-Lambda tier: a ``lambda``-routed model answers from onnxruntime inside the router, same validation,
same OIP answer; routes that do not need onnxruntime never import it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from local.api_gateway import LocalLambdaContext, build_rest_event
from local.sagemaker_runtime import LocalSageMakerRuntime
from local.stack import fresh_import

ROOT = Path(__file__).resolve().parents[2]
ROW = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture(scope="module")
def router_with_local_model(
    local_runtime: LocalSageMakerRuntime, router_module: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ModuleType]:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    local = json.loads(json.dumps(document["models"][0]))
    local["name"] = "iris-local"
    local["route"] = {"sync": "lambda"}
    document["models"].append(local)
    config = tmp_path_factory.mktemp("config") / "models.json"
    config.write_text(json.dumps(document))
    os.environ["MODELS_CONFIG_PATH"] = str(config)
    try:
        yield fresh_import("functions.router.handler")
    finally:
        os.environ.pop("MODELS_CONFIG_PATH", None)
        fresh_import("functions.router.handler")  # the session's router_module is the same module object


def infer(module: ModuleType, model: str, body: dict[str, Any]) -> tuple[int, Any]:
    event = build_rest_event(
        "POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, json.dumps(body).encode()
    )
    result = module.lambda_handler(event, LocalLambdaContext())
    return result["statusCode"], json.loads(result["body"])


def test_lambda_routed_model_answers_like_the_endpoint(router_with_local_model: ModuleType) -> None:
    body = {"id": "r1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    status, local = infer(router_with_local_model, "iris-local", body)
    assert status == 200
    endpoint_status, endpoint = infer(router_with_local_model, "iris", body)
    assert endpoint_status == 200
    assert local["outputs"] == endpoint["outputs"]
    assert (local["model_name"], local["id"]) == ("iris-local", "r1")


def test_lambda_routed_model_validates_the_same_way(router_with_local_model: ModuleType) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 99]}]}
    status, answer = infer(router_with_local_model, "iris-local", body)
    assert status == 400
    assert "outside the declared range" in answer["error"]


def test_a_missing_model_file_is_a_clear_502(router_with_local_model: ModuleType, tmp_path: Path) -> None:
    backend = router_with_local_model.in_lambda
    saved_root, saved_models = backend.model_root, dict(backend._models)
    backend.model_root, backend._models = tmp_path, {}
    try:
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
        status, answer = infer(router_with_local_model, "iris-local", body)
    finally:
        backend.model_root, backend._models = saved_root, saved_models
    assert status == 502
    assert "is the model layer attached?" in answer["error"]


def test_routes_without_an_in_lambda_model_never_import_onnxruntime() -> None:
    probe = (
        "import sys, functions.router.handler as h; "
        "print(int('onnxruntime' in sys.modules), int('numpy' in sys.modules), int(h.in_lambda is None))"
    )
    environment = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=environment, check=True
    )
    assert result.stdout.split() == ["0", "0", "1"]
