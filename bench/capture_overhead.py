"""``make bench``: what capture for drift monitoring costs the router's answer.

Two routers in one process over the same zero-latency endpoint (botocore's ``before-send`` hook answers with
the model's real response bytes, as in ``bench.router_overhead``): the default config without capture, and
the same config with iris captured at 100% (inputs and outputs), so every request writes its capture line (to
/dev/null here, to stdout in Lambda). The same requests alternate between the two, so drift on the host hits
both alike. Budget: capture adds at most 1 ms to the router's p99 for a one-row request, and its step at most
5 ms for a 1,000-row request (the line keeps ``max_rows``, 100 evenly spaced rows, ~8 KB of JSON; parsing the
1,000-row answer is most of what is left).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from bench.router_overhead import REQUESTS, ROOT, iris_event, percentile, zero_latency_endpoint

BUDGET_MS: Final[float] = 1.0
LARGE_BUDGET_MS: Final[float] = 5.0
WARM_UP: Final[int] = 50


def capture_config(directory: Path, capture: bool) -> str:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    for model in document["models"]:
        model.pop("capture", None)
    if capture:
        document["models"][0]["capture"] = {"sample_rate": 1.0, "inputs": ["input"], "outputs": True}
    path = directory / f"models-capture-{capture}.json"
    path.write_text(json.dumps(document))
    return str(path)


def record_p99(app: Any, event: dict[str, Any], answer: bytes) -> float:
    """The capture step alone (sample, build and write the line), timed around each call."""
    from functions.domain.infer import InferCall
    from functions.domain.outcomes import Answered
    from functions.domain.validation import validate_infer_request
    from functions.handlers.router.capture import RequestCapture

    capture = RequestCapture(app.config, app.clients.log_sink)
    iris = app.config.model("iris")
    request = validate_infer_request(iris, event["body"].encode())
    samples = []
    for index in range(REQUESTS + WARM_UP):
        call = InferCall(model="iris", body=request.body, correlation_id=f"bench-{index}")
        start = time.perf_counter()
        capture.record(call, Answered(answer, request))
        if index >= WARM_UP:
            samples.append((time.perf_counter() - start) * 1000)
    return percentile(samples, 0.99)


def main() -> None:
    from functions.adapters.onnx_model import OnnxModel
    from functions.adapters.sagemaker import SageMakerBackend, create_sagemaker_runtime_client
    from functions.config.models import load_models_config
    from functions.config.router_settings import RouterSettings
    from functions.domain.validation import validate_infer_request
    from functions.handlers.router.app import RouterClients, create_app
    from local.api_gateway import LocalLambdaContext

    iris = load_models_config().model("iris")
    assert iris is not None
    model = OnnxModel(iris, ROOT / "layers/models/iris/model.onnx", intra_op_threads=1)
    print(f"capture cost, in-process, zero-latency endpoint, {REQUESTS} requests each after {WARM_UP} warm-up (ms)")
    print(f"    {'request':<10} {'router':<14} {'p50':>8} {'p99':>8} {'lines':>6}")
    one_row = large = float("-inf")
    with tempfile.TemporaryDirectory() as directory, open(os.devnull, "w") as sink:
        for rows in (1, 1000):
            event = iris_event(rows)
            answer = json.dumps(
                model.predict(validate_infer_request(iris, event["body"].encode())), separators=(",", ":")
            ).encode()
            timer: dict[str, float] = {"inside": 0.0, "start": 0.0}

            def client(timeout_ms: int, answer: bytes = answer, timer: dict[str, float] = timer) -> Any:
                made = create_sagemaker_runtime_client(timeout_ms)
                zero_latency_endpoint(made, answer, timer)
                return made

            lines = {"none": 0, "capture 100%": 0}

            def writer(name: str, lines: dict[str, int] = lines) -> Any:
                def write(line: str) -> None:
                    lines[name] += line.startswith('{"capture":1')
                    print(line, file=sink)

                return write

            backend = SageMakerBackend(client)
            apps = {
                name: create_app(
                    RouterSettings(models_config_path=capture_config(Path(directory), name != "none")),
                    None,
                    RouterClients(backend, log_sink=writer(name)),
                )
                for name in lines
            }
            samples: dict[str, list[float]] = {name: [] for name in apps}
            with contextlib.redirect_stdout(sink):
                for index in range(REQUESTS + WARM_UP):
                    for name, app in apps.items():
                        start = time.perf_counter()
                        result = app(event, LocalLambdaContext())
                        elapsed = (time.perf_counter() - start) * 1000
                        assert result["statusCode"] == 200, result
                        if index >= WARM_UP:
                            samples[name].append(elapsed)
            for name, values in samples.items():
                label = f"{rows} row" + ("s" if rows > 1 else "")
                print(f"    {label:<10} {name:<14} {percentile(values, 0.5):8.3f} {percentile(values, 0.99):8.3f} "
                      f"{lines[name]:6d}")  # fmt: skip
            added = percentile(samples["capture 100%"], 0.99) - percentile(samples["none"], 0.99)
            step = record_p99(apps["capture 100%"], event, answer)
            if rows == 1:
                one_row = max(added, step)
            else:
                large = step
            print(f"    {'':<10} {'added at p99':<14} {added:17.3f}")
            print(f"    {'':<10} {'record() p99':<14} {step:17.3f}")
    verdict = "within" if one_row <= BUDGET_MS else "OVER"
    print(f"    capture adds {one_row:.3f} ms at p99 to a one-row request at most (whole requests or record() alone): "
          f"{verdict} the {BUDGET_MS:g} ms budget")  # fmt: skip
    verdict = "within" if large <= LARGE_BUDGET_MS else "OVER"
    print(f"    capture's step costs {large:.3f} ms at p99 for a 1000-row request: {verdict} the "
          f"{LARGE_BUDGET_MS:g} ms budget")  # fmt: skip
    if one_row > BUDGET_MS or large > LARGE_BUDGET_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
