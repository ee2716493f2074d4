"""What the router's per-feature cost benches share (``bench.shadow_overhead``, ``bench.capture_overhead``,
``bench.output_contract``): iris's real answer for a batch of rows, a zero-latency SageMaker backend that returns
it (botocore's ``before-send`` hook, as in ``bench.router_overhead``), routers built over it from a models file,
and the timing loops. Routers compared are called in turn on the same request, so drift on the host hits them
alike."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from bench.router_overhead import REQUESTS, ROOT, iris_event, percentile, zero_latency_endpoint

WARM_UP: Final[int] = 50
DEFAULT_MODELS: Final[Path] = ROOT / "functions" / "models.json"


@functools.cache
def _iris() -> tuple[Any, Any]:
    from functions.adapters.onnx_model import OnnxModel
    from functions.config.models import load_models_config

    iris = load_models_config().model("iris")
    assert iris is not None
    return iris, OnnxModel(iris, ROOT / "layers/models/iris/model.onnx", intra_op_threads=1)


def iris_answer(rows: int) -> tuple[dict[str, Any], bytes]:
    """An API Gateway infer event for ``rows`` iris rows and the model's real answer to it."""
    from functions.domain.validation import validate_infer_request

    iris, model = _iris()
    event = iris_event(rows)
    answer = model.predict(validate_infer_request(iris, event["body"].encode()))
    return event, json.dumps(answer, separators=(",", ":")).encode()


def zero_latency_backend(answer: bytes) -> Any:
    """A SageMaker backend whose endpoint answers ``answer`` at once, without a network call."""
    from functions.adapters.sagemaker import SageMakerBackend, create_sagemaker_runtime_client

    timer: dict[str, float] = {"inside": 0.0, "start": 0.0}

    def client(timeout_ms: int) -> Any:
        made = create_sagemaker_runtime_client(timeout_ms)
        zero_latency_endpoint(made, answer, timer)
        return made

    return SageMakerBackend(client)


def models_file(directory: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> str:
    """The default models file with ``edit`` applied to its document, written under ``directory``."""
    document = json.loads(DEFAULT_MODELS.read_text())
    edit(document)
    path = directory / f"models-{name}.json"
    path.write_text(json.dumps(document))
    return str(path)


def router(models_path: str, backend: Any, log_sink: Callable[[str], None]) -> Any:
    from functions.config.router_settings import RouterSettings
    from functions.handlers.router.app import RouterClients, create_app

    return create_app(RouterSettings(models_config_path=models_path), None, RouterClients(backend, log_sink=log_sink))


def alternate(apps: Mapping[str, Any], event: dict[str, Any]) -> dict[str, list[float]]:
    """Each router's whole-request times (ms) over the same ``event``, called in turn, after a warm-up."""
    from local.api_gateway import LocalLambdaContext

    samples: dict[str, list[float]] = {name: [] for name in apps}
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for index in range(REQUESTS + WARM_UP):
            for name, app in apps.items():
                start = time.perf_counter()
                result = app(event, LocalLambdaContext())
                elapsed = (time.perf_counter() - start) * 1000
                assert result["statusCode"] == 200, result
                if index >= WARM_UP:
                    samples[name].append(elapsed)
    return samples


def timed(action: Callable[[int], object]) -> list[float]:
    """``action(index)``'s times (ms), after a warm-up."""
    samples = []
    for index in range(REQUESTS + WARM_UP):
        start = time.perf_counter()
        action(index)
        if index >= WARM_UP:
            samples.append((time.perf_counter() - start) * 1000)
    return samples


def p50_p99(samples: list[float]) -> tuple[float, float]:
    return percentile(samples, 0.5), percentile(samples, 0.99)


def row_label(rows: int) -> str:
    return f"{rows} row" + ("s" if rows > 1 else "")
