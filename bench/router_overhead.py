"""``make bench``: the router's cold-start and per-request cost next to a bare boto3 handler.

(a) cold start: median over fresh processes of importing the handler module (router: settings, config,
    Powertools, client; bare: boto3 + client), and of importing it and answering one 1-row request against a
    zero-latency endpoint (what a caller waiting on a cold start waits for), with the ratios (target <= 1.25
    including the first answer).
(b) per request, in-process, against a zero-latency endpoint (botocore's ``before-send`` hook answers
    with the model's real response bytes, so both handlers pay botocore's full cost and no network):
    the router's own time (handler total minus time inside the SageMaker call) p50/p99 for a 1-row and a
    1,000-row iris request, next to each handler's total. Target: router's own p99 <= 0.5 ms for 1 row.
    The router writes its per-request EMF document (to /dev/null here, to stdout in Lambda) in these figures.
(c) the per-request EMF document alone (built, serialized, written), and the router's own time for 1 row with
    metrics off: what the metrics add to a request.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ROW = [5.1, 3.5, 1.4, 0.2]
sys.path.insert(0, str(ROOT))
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": "http://127.0.0.1:9",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "9"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))
IMPORT_PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
# Import, init and the first answer, in a fresh process: what a caller waiting on a cold start waits for.
FIRST_ANSWER_PROBE = """
import time
t = time.perf_counter()
import {module} as handler
from bench.router_overhead import first_answer
first_answer(handler, {clients})
print(time.perf_counter() - t)
"""


def cold_seconds(probe: str) -> float:
    samples = []
    for _ in range(COLD_RUNS):
        output = subprocess.run(
            [sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        samples.append(float(output.stdout.strip().splitlines()[-1]))
    return statistics.median(samples)


def iris_event(rows: int) -> dict[str, Any]:
    body = json.dumps({"inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": ROW * rows}]})
    return {
        "resource": "/v2/models/{model}/infer", "path": "/v2/models/iris/infer", "httpMethod": "POST",
        "headers": {"Content-Type": "application/json"}, "multiValueHeaders": {}, "queryStringParameters": None,
        "pathParameters": {"model": "iris"}, "requestContext": {"requestId": "bench", "stage": "bench"},
        "body": body, "isBase64Encoded": False,
    }  # fmt: skip


# The model's answer to ROW, as the container would send it (the cold probe must not load onnxruntime itself).
FIRST_ANSWER = (
    b'{"model_name":"iris","model_version":"1","outputs":[{"name":"label","datatype":"INT64","shape":[1],'
    b'"data":[0]},{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":[0.98,0.018,1.4e-08]}]}'
)


def first_answer(handler: Any, clients: list[Any]) -> None:
    """One 1-row request through ``handler`` against the zero-latency endpoint (the cold probe's last step)."""
    from local.api_gateway import LocalLambdaContext

    timer = {"inside": 0.0, "start": 0.0}
    for client in clients:
        zero_latency_endpoint(client, FIRST_ANSWER, timer)
    result = handler.lambda_handler(iris_event(1), LocalLambdaContext())
    assert result["statusCode"] == 200, result


class RawResponse(io.BytesIO):
    def stream(self, **_: Any) -> Any:
        yield self.read()


def zero_latency_endpoint(client: Any, answer: bytes, timer: dict[str, float]) -> None:
    from botocore.awsrequest import AWSResponse

    def before_call(**_: Any) -> None:
        timer["start"] = time.perf_counter()

    def respond(request: Any, **_: Any) -> AWSResponse:
        headers = {"Content-Type": "application/json", "x-Amzn-Invoked-Production-Variant": "AllTraffic"}
        return AWSResponse(request.url, 200, headers, RawResponse(answer))

    def after_call(**_: Any) -> None:
        timer["inside"] += time.perf_counter() - timer["start"]

    client.meta.events.register("before-call.sagemaker-runtime.InvokeEndpoint", before_call)
    client.meta.events.register("before-send.sagemaker-runtime.InvokeEndpoint", respond)
    client.meta.events.register("after-call.sagemaker-runtime.InvokeEndpoint", after_call)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def per_request(handler: Any, event: dict[str, Any], timer: dict[str, float]) -> tuple[list[float], list[float]]:
    from local.api_gateway import LocalLambdaContext

    totals, own = [], []
    # The router's EMF document per request goes to stdout, as in Lambda; written to /dev/null, not the terminal.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        for index in range(REQUESTS + 50):
            timer["inside"] = 0.0
            context = LocalLambdaContext()
            start = time.perf_counter()
            result = handler(event, context)
            elapsed = time.perf_counter() - start
            assert result["statusCode"] == 200, result
            if index >= 50:
                totals.append(elapsed * 1000)
                own.append((elapsed - timer["inside"]) * 1000)
    return totals, own


def emf_document_us() -> list[float]:
    """The request document's cost: measured around ``finish`` (the build, ``json.dumps`` and the write)."""
    from functions.config.models import load_models_config
    from functions.handlers.router.request_metrics import RequestMetrics

    samples = []
    with open(os.devnull, "w") as sink:
        metrics = RequestMetrics(load_models_config(), {"iris": 100.0}, cold_start=False,
                                 emit=lambda line: print(line, file=sink))  # fmt: skip
        for index in range(REQUESTS + 50):
            record = metrics.begin(iris_event(1))
            assert record is not None
            record.endpoint_ms = 1.0
            start = time.perf_counter()
            metrics.finish(record, {"statusCode": 200, "headers": {"Content-Type": "application/json"}})
            if index >= 50:
                samples.append((time.perf_counter() - start) * 1_000_000)
    return samples


def main() -> None:
    print(f"(a) cold start, median of {COLD_RUNS} fresh processes each")
    router_cold = cold_seconds(IMPORT_PROBE.format(module="functions.handlers.router.handler"))
    bare_cold = cold_seconds(IMPORT_PROBE.format(module="bench.bare_handler"))
    router_first = cold_seconds(
        FIRST_ANSWER_PROBE.format(
            module="functions.handlers.router.handler", clients="list(handler.sagemaker._clients.values())"
        )
    )
    bare_first = cold_seconds(FIRST_ANSWER_PROBE.format(module="bench.bare_handler", clients="[handler.client]"))
    print(f"    {'':<24} {'router':>8} {'bare':>8} {'ratio':>6}")
    print(f"    {'import + init':<24} {router_cold * 1000:8.1f} {bare_cold * 1000:8.1f} {router_cold / bare_cold:6.2f}")
    print(
        f"    {'+ the first answer':<24} {router_first * 1000:8.1f} {bare_first * 1000:8.1f} "
        f"{router_first / bare_first:6.2f}   (target <= 1.25: what a caller on a cold start waits for)"
    )
    onnx_loaded = subprocess.run(
        [sys.executable, "-c", "import sys, functions.handlers.router.handler; print('onnxruntime' in sys.modules)"],
        capture_output=True, text=True, check=True, cwd=ROOT,
    ).stdout.strip()  # fmt: skip
    print(f"    onnxruntime imported by the router's cold path: {onnx_loaded}")

    import functions.handlers.router.handler as router
    from bench import bare_handler
    from functions.adapters.onnx_model import OnnxModel
    from functions.config.models import load_models_config
    from functions.domain.validation import validate_infer_request

    iris = load_models_config().model("iris")
    assert iris is not None
    model = OnnxModel(iris, ROOT / "layers/models/iris/model.onnx", intra_op_threads=1)
    print(f"\n(b) per request, in-process, zero-latency endpoint, {REQUESTS} requests after 50 warm-up (ms)")
    print(f"    {'request':<10} {'handler':<8} {'total p50':>10} {'total p99':>10} {'own p50':>9} {'own p99':>9}")
    own_without_metrics: list[float] = []
    for rows in (1, 1000):
        event = iris_event(rows)
        answer = json.dumps(model.predict(validate_infer_request(iris, event["body"].encode())), separators=(",", ":"))
        for name, handler, clients in (
            ("router", router.lambda_handler, list(router.sagemaker._clients.values())),
            ("bare", bare_handler.lambda_handler, [bare_handler.client]),
        ):
            timer = {"inside": 0.0, "start": 0.0}
            for client in clients:
                zero_latency_endpoint(client, answer.encode(), timer)
            totals, own = per_request(handler, event, timer)
            if name == "router" and rows == 1:
                os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
                _, own_without_metrics = per_request(handler, event, timer)
                os.environ.pop("POWERTOOLS_METRICS_DISABLED")
            for client in clients:
                client.meta.events.unregister("before-send.sagemaker-runtime.InvokeEndpoint")
            print(
                f"    {f'{rows} row' + ('s' if rows > 1 else ''):<10} {name:<8} {percentile(totals, 0.5):10.3f} "
                f"{percentile(totals, 0.99):10.3f} {percentile(own, 0.5):9.3f} {percentile(own, 0.99):9.3f}"
            )
            # Fresh handlers on the next request size: drop this size's hooks.
            for client in clients:
                client.meta.events.unregister("before-call.sagemaker-runtime.InvokeEndpoint")
                client.meta.events.unregister("after-call.sagemaker-runtime.InvokeEndpoint")
    print("    own = handler total minus the time inside invoke_endpoint (botocore + zero-latency endpoint)")
    emf = emf_document_us()
    print(
        f"\n(c) router metrics, {REQUESTS} requests: the EMF document p50 {percentile(emf, 0.5):.1f} us, "
        f"p99 {percentile(emf, 0.99):.1f} us; router own 1 row without metrics p50 "
        f"{percentile(own_without_metrics, 0.5):.3f} ms, p99 {percentile(own_without_metrics, 0.99):.3f} ms"
    )


if __name__ == "__main__":
    main()
