"""The in-Lambda tier: a ``lambda``-routed model answers from onnxruntime inside the router, same validation,
same OIP answer; routes that do not need onnxruntime never import it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.model_variants import write_models_with_variants, write_models_without_in_lambda
from tests.helpers.onnx_graphs import BROKEN_TENSORS, LOOKUP_TENSORS, broken_model, lookup_model

ROOT = Path(__file__).resolve().parents[2]
ROW = [6.7, 3.0, 5.2, 2.3]


@pytest.fixture(scope="module")
def router_with_local_model(sagemaker_backend: SageMakerBackend, tmp_path_factory: pytest.TempPathFactory) -> RouterApp:
    config = write_models_with_variants(
        tmp_path_factory.mktemp("config"), {"iris-local": {"route": {"sync": "lambda"}}}
    )
    return create_app(RouterSettings(models_config_path=str(config)), None, RouterClients(sagemaker_backend))


def infer(router: RouterApp, model: str, body: dict[str, Any]) -> tuple[int, Any]:
    event = build_rest_event(
        "POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, json.dumps(body).encode()
    )
    assert event is not None
    result = router(event, LocalLambdaContext())
    return result["statusCode"], json.loads(result["body"])


def test_lambda_routed_model_answers_like_the_endpoint(router_with_local_model: RouterApp) -> None:
    body = {"id": "r1", "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    status, local = infer(router_with_local_model, "iris-local", body)
    assert status == 200
    endpoint_status, endpoint = infer(router_with_local_model, "iris", body)
    assert endpoint_status == 200
    assert local["outputs"] == endpoint["outputs"]
    assert (local["model_name"], local["id"]) == ("iris-local", "r1")


def test_lambda_routed_model_validates_the_same_way(router_with_local_model: RouterApp) -> None:
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 99]}]}
    status, answer = infer(router_with_local_model, "iris-local", body)
    assert status == 400
    assert "outside the declared range" in answer["error"]


def test_a_missing_model_file_is_a_clear_502(router_with_local_model: RouterApp, tmp_path: Path) -> None:
    backend: Any = router_with_local_model.in_lambda
    saved_root, saved_models = backend.model_root, dict(backend._models)
    backend.model_root, backend._models = tmp_path, {}
    try:
        body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
        status, answer = infer(router_with_local_model, "iris-local", body)
    finally:
        backend.model_root, backend._models = saved_root, saved_models
    assert status == 502
    assert "is the model layer attached?" in answer["error"]


IMPORT_PROBE = (
    "import sys, functions.handlers.router.handler as h; "
    "print(int('onnxruntime' in sys.modules), int('numpy' in sys.modules), int(h.router.in_lambda is None))"
)


def import_probe(environment: dict[str, str]) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, cwd=ROOT, env=environment, check=True
    )
    return result.stdout.split()


def test_routes_without_an_in_lambda_model_never_import_onnxruntime(tmp_path: Path) -> None:
    environment = probe_environment(MODELS_CONFIG_PATH=str(write_models_without_in_lambda(tmp_path)))
    assert import_probe(environment) == ["0", "0", "1"]


def test_the_default_config_defers_onnxruntime_to_its_lambda_routed_models_first_request() -> None:
    # functions/models.json routes digits to the router: the backend exists, onnxruntime is not yet imported.
    assert import_probe(probe_environment()) == ["0", "0", "0"]


def lambda_entry(name: str, artifact: str, tensors: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "version": "1",
        "platform": "onnxruntime_onnx",
        "artifact": artifact,
        **tensors,
        "route": {"sync": "lambda"},
        "limits": {"max_body_bytes": 1048576, "max_batch_rows": 100},
    }


def failing_models_config(root: Path) -> Path:
    """A model root (what MODEL_ROOT points at: /opt in Lambda) with three lambda-routed models whose load or
    run fails, plus iris; and the config naming them."""
    (root / "models").mkdir(parents=True)
    (root / "models" / "lookup.onnx").write_bytes(lookup_model())
    (root / "models" / "broken.onnx").write_bytes(broken_model())
    (root / "models" / "garbage.onnx").write_bytes(b"not an onnx graph")
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    document["models"] += [
        lambda_entry("lookup-local", "models/lookup.onnx", LOOKUP_TENSORS),
        lambda_entry("broken-local", "models/broken.onnx", BROKEN_TENSORS),
        lambda_entry("garbage-local", "models/garbage.onnx", BROKEN_TENSORS),
    ]
    config = root / "models.json"
    config.write_text(json.dumps(document))
    return config


@pytest.fixture(scope="module")
def router_with_failing_models(
    sagemaker_backend: SageMakerBackend, tmp_path_factory: pytest.TempPathFactory
) -> RouterApp:
    root = tmp_path_factory.mktemp("opt")
    settings = RouterSettings(models_config_path=str(failing_models_config(root)), model_root=str(root))
    return create_app(settings, None, RouterClients(sagemaker_backend))


LOOKUP = {"inputs": [{"name": "index", "shape": [1], "datatype": "INT64", "data": [3]}]}
LOOKUP_OUT_OF_TABLE = {"inputs": [{"name": "index", "shape": [1], "datatype": "INT64", "data": [99]}]}
BROKEN = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}


def test_lambda_routed_run_onnxruntime_refuses_for_the_values_is_422(router_with_failing_models: RouterApp) -> None:
    assert infer(router_with_failing_models, "lookup-local", LOOKUP)[1]["outputs"][0]["data"] == [6.0, 7.0]
    status, answer = infer(router_with_failing_models, "lookup-local", LOOKUP_OUT_OF_TABLE)
    assert status == 422  # as the SageMaker route answers it: the container's 422 comes back as a ModelError
    assert "model 'lookup-local' cannot process the request's values" in answer["error"]
    assert "out of data bounds" in answer["error"]


def test_lambda_routed_model_that_fails_its_run_is_502(router_with_failing_models: RouterApp) -> None:
    status, answer = infer(router_with_failing_models, "broken-local", BROKEN)
    assert status == 502
    assert "model 'broken-local' failed: Fail:" in answer["error"]


def test_lambda_routed_model_that_cannot_load_is_a_clear_502(router_with_failing_models: RouterApp) -> None:
    status, answer = infer(router_with_failing_models, "garbage-local", BROKEN)
    assert status == 502
    assert "model 'garbage-local' could not be loaded from" in answer["error"]
    assert "InvalidProtobuf" in answer["error"]
    # The other models of the same router keep answering.
    assert infer(router_with_failing_models, "lookup-local", LOOKUP)[0] == 200


# A fresh interpreter where onnxruntime cannot be imported: the Lambda without the onnxruntime layer.
NO_ONNXRUNTIME_PROBE = """
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError(f"No module named {name!r}")
sys.meta_path.insert(0, Block())
import functions.handlers.router.handler as handler
from local.api_gateway import LocalLambdaContext, build_rest_event
body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}]})
event = build_rest_event("POST", "/v2/models/iris-local/infer", {"Content-Type": "application/json"}, body.encode())
result = handler.lambda_handler(event, LocalLambdaContext())
print(json.dumps({"status": result["statusCode"], "body": json.loads(result["body"])}))
"""


def probe_environment(**extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        **extra,
    }


def config_with_iris_local(directory: Path) -> Path:
    return write_models_with_variants(directory, {"iris-local": {"route": {"sync": "lambda"}}})


def test_lambda_routed_model_without_the_onnxruntime_layer_is_a_clear_502(tmp_path: Path) -> None:
    environment = probe_environment(MODELS_CONFIG_PATH=str(config_with_iris_local(tmp_path)))
    result = subprocess.run(
        [sys.executable, "-c", NO_ONNXRUNTIME_PROBE],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] == 502
    assert "model 'iris-local' runs in the router, but onnxruntime cannot be imported" in answer["body"]["error"]
    assert "is the onnxruntime layer attached?" in answer["body"]["error"]


WARM_PROBE = """
import json, sys
import functions.handlers.router.handler as handler
print(json.dumps({
    "onnxruntime": "onnxruntime" in sys.modules,
    "sessions": sorted(name for name, _version in handler.router.in_lambda._models) if handler.router.in_lambda is not None else None,
}))
"""


def warm_probe(environment: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", WARM_PROBE], capture_output=True, text=True, cwd=ROOT, env=environment, check=True
    )
    probed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return probed


@pytest.mark.parametrize(
    ("initialization", "expected"),
    [
        # digits is functions/models.json's own lambda-routed model, next to the variant.
        ("provisioned-concurrency", {"onnxruntime": True, "sessions": ["digits", "iris-local"]}),
        ("on-demand", {"onnxruntime": False, "sessions": []}),
        (None, {"onnxruntime": False, "sessions": []}),
    ],
)
def test_lambda_routed_sessions_are_warmed_at_init_only_under_provisioned_concurrency(
    tmp_path: Path, initialization: str | None, expected: dict[str, Any]
) -> None:
    extra = {"MODELS_CONFIG_PATH": str(config_with_iris_local(tmp_path))}
    if initialization is not None:
        extra["AWS_LAMBDA_INITIALIZATION_TYPE"] = initialization
    assert warm_probe(probe_environment(**extra)) == expected


def test_provisioned_init_without_a_lambda_routed_model_never_imports_onnxruntime(tmp_path: Path) -> None:
    environment = probe_environment(
        MODELS_CONFIG_PATH=str(write_models_without_in_lambda(tmp_path)),
        AWS_LAMBDA_INITIALIZATION_TYPE="provisioned-concurrency",
    )
    probed = warm_probe(environment)
    assert probed == {"onnxruntime": False, "sessions": None}


def test_provisioned_init_with_a_model_that_cannot_load_still_starts_the_router(tmp_path: Path) -> None:
    environment = probe_environment(
        MODELS_CONFIG_PATH=str(failing_models_config(tmp_path)),
        MODEL_ROOT=str(tmp_path),
        AWS_LAMBDA_INITIALIZATION_TYPE="provisioned-concurrency",
    )
    # garbage-local fails to load and is left for its first request to report; broken-local loads (its warm-up
    # run fails, as its requests will report) and lookup-local is warm.
    assert warm_probe(environment) == {"onnxruntime": True, "sessions": ["broken-local", "lookup-local"]}
