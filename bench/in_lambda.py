"""``python -m bench.in_lambda``: the in-Lambda tier next to a SageMaker endpoint (the local runtime).

(a) cold start: median over fresh processes of importing the router handler, without a ``lambda``-routed
    model (``functions/models.json`` minus digits: onnxruntime must not be imported) and with the default
    config (digits in the router: still not imported until the model's first request), plus that first
    request, which loads onnxruntime and the session. Then the same under provisioned concurrency
    (``AWS_LAMBDA_INITIALIZATION_TYPE=provisioned-concurrency``), where init warms the in-Lambda sessions:
    the import carries the load, which no request waits for, and the first request is as fast as any; the
    import without a lambda-routed model is unchanged there.
(b) per request, in-process, warm: the router handler answering iris from onnxruntime inside itself, next to
    the same model behind the local SageMaker runtime over HTTP (what a serverless endpoint costs without
    the network to AWS). p50 / p99 over 2,000 1-row requests each.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
BODY = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
# The default config's lambda-routed model and a blank 8x8 image for it.
COLD_MODEL = "digits"
COLD_BODY = {"inputs": [{"name": "pixels", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64}]}
COLD_RUNS = 7
WARM_REQUESTS = 2000

COLD_PROBE = """
import json, sys, time
started = time.perf_counter()
import functions.handlers.router.handler as handler
imported = time.perf_counter()
onnxruntime_at_import = "onnxruntime" in sys.modules
from local.api_gateway import LocalLambdaContext, build_rest_event
body = json.dumps({body}).encode()
first = None
if {with_request}:
    event = build_rest_event("POST", "/v2/models/{model}/infer", {{"Content-Type": "application/json"}}, body)
    before = time.perf_counter()
    assert handler.lambda_handler(event, LocalLambdaContext())["statusCode"] == 200
    first = time.perf_counter() - before
print(json.dumps({{"import_ms": (imported - started) * 1000, "onnxruntime_imported": onnxruntime_at_import,
                  "first_request_ms": None if first is None else first * 1000}}))
"""


def config_with_local_model(directory: Path) -> Path:
    from local.model_variants import write_models_with_variants

    return write_models_with_variants(directory, {"iris-local": {"route": {"sync": "lambda"}}})


def config_without_local_model(directory: Path) -> Path:
    from local.model_variants import write_models_without_in_lambda

    return write_models_without_in_lambda(directory)


def cold(config: Path | None, with_request: bool, *, provisioned: bool = False) -> dict[str, Any]:
    environment = {**os.environ, **ENVIRONMENT, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    environment.pop("AWS_LAMBDA_INITIALIZATION_TYPE", None)
    if provisioned:
        environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = "provisioned-concurrency"
    if config is not None:
        environment["MODELS_CONFIG_PATH"] = str(config)
    runs = []
    for _ in range(COLD_RUNS):
        probe = COLD_PROBE.format(body=json.dumps(COLD_BODY), model=COLD_MODEL, with_request=with_request)
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=environment, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result: dict[str, Any] = {
        "import_ms": statistics.median(r["import_ms"] for r in runs),
        "onnxruntime_imported": any(r["onnxruntime_imported"] for r in runs),
    }
    if with_request:
        result["first_request_ms"] = statistics.median(r["first_request_ms"] for r in runs)
    return result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def warm(config: Path) -> dict[str, tuple[float, float]]:
    os.environ.update({**ENVIRONMENT, "MODELS_CONFIG_PATH": str(config), "POWERTOOLS_LOG_LEVEL": "WARNING"})
    from local.api_gateway import LocalLambdaContext, build_rest_event
    from local.stack import start_local_stack

    stack = start_local_stack(api_port=0, config_path=str(config), async_options=None)
    try:
        handler = stack.router
        body = json.dumps(BODY).encode()
        results = {}
        # The router's EMF document per request goes to stdout, as in Lambda; written to /dev/null, not the terminal.
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            for label, model in (
                ("in-Lambda (onnxruntime in the router)", "iris-local"),
                ("SageMaker runtime (local, HTTP)", "iris"),
            ):
                event = build_rest_event(
                    "POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, body
                )
                assert event is not None
                for _ in range(50):
                    handler(event, LocalLambdaContext())
                timings = []
                for _ in range(WARM_REQUESTS):
                    started = time.perf_counter()
                    answer = handler(event, LocalLambdaContext())
                    timings.append((time.perf_counter() - started) * 1000)
                    assert answer["statusCode"] == 200, answer
                results[label] = (percentile(timings, 0.5), percentile(timings, 0.99))
        return results
    finally:
        stack.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        (Path(directory) / "variant").mkdir()
        (Path(directory) / "without").mkdir()
        config = config_with_local_model(Path(directory) / "variant")
        without = config_without_local_model(Path(directory) / "without")
        plain = cold(without, with_request=False)
        with_local = cold(None, with_request=True)
        plain_pc = cold(without, with_request=False, provisioned=True)
        with_local_pc = cold(None, with_request=True, provisioned=True)
        print(
            f"cold start (median of {COLD_RUNS} processes, Python {sys.version_info.major}.{sys.version_info.minor}):"
        )
        for init, without_model, local in (
            ("on-demand", plain, with_local),
            ("provisioned-concurrency", plain_pc, with_local_pc),
        ):
            print(f" {init} init:")
            for label, result in (("without a lambda-routed model", without_model), ("default config (digits)", local)):
                print(
                    f"  router import, {label:30s} {result['import_ms']:7.1f} ms"
                    f"   onnxruntime imported: {result['onnxruntime_imported']}"
                )
            print(f"  + first request to {COLD_MODEL}:                     {local['first_request_ms']:7.1f} ms")
        print(f"warm, per request through the router handler ({WARM_REQUESTS} x 1 row):")
        for label, (p50, p99) in warm(config).items():
            print(f"  {label:40s} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms")


if __name__ == "__main__":
    main()
