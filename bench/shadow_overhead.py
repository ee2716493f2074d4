"""``make bench``: what a shadow version costs the router's primary answer.

Two routers in one process over the same zero-latency endpoint (botocore's ``before-send`` hook answers with
the model's real response bytes, as in ``bench.router_overhead``): the default config, and the same config
with a shadow version of iris sampled at 100%, so every request writes its shadow line (to /dev/null here, to
stdout in Lambda). The same requests alternate between the two, so drift on the host hits both alike. Budget:
the shadow adds at most 1 ms to the router's p99.
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
WARM_UP: Final[int] = 50


def shadow_config(directory: Path) -> str:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    document["models"][0]["versions"] = [
        {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"},
         "shadow": {"sample_rate": 1.0}}
    ]  # fmt: skip
    path = directory / "models-shadow.json"
    path.write_text(json.dumps(document))
    return str(path)


def ship_p99(app: Any, event: dict[str, Any], answer: bytes) -> float:
    """The shipping step alone (sample, build and write the line), timed around each call: what the shadow
    adds to a request without the host's noise in two whole requests' p99."""
    from functions.domain.infer import InferCall
    from functions.handlers.router.shadow_shipping import ShadowShipping

    shipping = ShadowShipping(app.config, app.clients.log_sink)
    samples = []
    for index in range(REQUESTS + WARM_UP):
        call = InferCall(model="iris", body=event["body"].encode(), correlation_id=f"bench-{index}")
        start = time.perf_counter()
        shipping.ship(call, "1", event["headers"], answer, 1.0)
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
    print(f"shadow cost, in-process, zero-latency endpoint, {REQUESTS} requests each after {WARM_UP} warm-up (ms)")
    print(f"    {'request':<10} {'router':<14} {'p50':>8} {'p99':>8} {'lines':>6}")
    worst = float("-inf")
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

            lines = {"none": 0, "shadow 100%": 0}

            def writer(name: str, lines: dict[str, int] = lines) -> Any:
                def write(line: str) -> None:
                    lines[name] += "shadow_request" in line
                    print(line, file=sink)

                return write

            backend = SageMakerBackend(client)
            apps = {
                "none": create_app(RouterSettings(), None, RouterClients(backend, log_sink=writer("none"))),
                "shadow 100%": create_app(
                    RouterSettings(models_config_path=shadow_config(Path(directory))),
                    None,
                    RouterClients(backend, log_sink=writer("shadow 100%")),
                ),
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
            added = percentile(samples["shadow 100%"], 0.99) - percentile(samples["none"], 0.99)
            ship = ship_p99(apps["shadow 100%"], event, answer)
            worst = max(worst, added, ship)
            print(f"    {'':<10} {'added at p99':<14} {added:17.3f}")
            print(f"    {'':<10} {'ship() p99':<14} {ship:17.3f}")
    verdict = "within" if worst <= BUDGET_MS else "OVER"
    print(f"    the shadow adds {worst:.3f} ms at p99 at most (whole requests or ship() alone): {verdict} the "
          f"{BUDGET_MS:g} ms budget")  # fmt: skip
    if worst > BUDGET_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
