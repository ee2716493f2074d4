"""``make bench``: what a shadow version costs the router's primary answer.

Two routers in one process over the same zero-latency endpoint (botocore's ``before-send`` hook answers with
the model's real response bytes, as in ``bench.router_overhead``): the default config, and the same config
with a shadow version of iris sampled at 100%, so every request writes its shadow line (to /dev/null here, to
stdout in Lambda). The same requests alternate between the two, so drift on the host hits both alike. Budget:
the shadow adds at most 1 ms to the router's p99.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from bench.paired_routers import (
    WARM_UP,
    alternate,
    iris_answer,
    models_file,
    p50_p99,
    router,
    row_label,
    timed,
    zero_latency_backend,
)
from bench.router_overhead import REQUESTS, percentile

BUDGET_MS: Final[float] = 1.0


def with_shadow(document: dict[str, Any]) -> None:
    document["models"][0]["versions"] = [
        {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"},
         "shadow": {"sample_rate": 1.0}}
    ]  # fmt: skip


def ship_p99(app: Any, event: dict[str, Any], answer: bytes) -> float:
    """The shipping step alone (sample, build and write the line), timed around each call: what the shadow
    adds to a request without the host's noise in two whole requests' p99."""
    from functions.domain.infer import InferCall
    from functions.handlers.router.shadow_shipping import ShadowShipping

    shipping = ShadowShipping(app.config, app.clients.log_sink)
    body = event["body"].encode()

    def ship(index: int) -> None:
        call = InferCall(model="iris", body=body, correlation_id=f"bench-{index}")
        shipping.ship(call, "1", event["headers"], answer, 1.0)

    return percentile(timed(ship), 0.99)


def main() -> None:
    print(f"shadow cost, in-process, zero-latency endpoint, {REQUESTS} requests each after {WARM_UP} warm-up (ms)")
    print(f"    {'request':<10} {'router':<14} {'p50':>8} {'p99':>8} {'lines':>6}")
    worst = float("-inf")
    with tempfile.TemporaryDirectory() as directory, open(os.devnull, "w") as sink:
        for rows in (1, 1000):
            event, answer = iris_answer(rows)
            lines = {"none": 0, "shadow 100%": 0}

            def writer(name: str, lines: dict[str, int] = lines) -> Callable[[str], None]:
                def write(line: str) -> None:
                    lines[name] += "shadow_request" in line
                    print(line, file=sink)

                return write

            backend = zero_latency_backend(answer)
            apps = {
                "none": router(models_file(Path(directory), "plain", lambda document: None), backend, writer("none")),
                "shadow 100%": router(
                    models_file(Path(directory), "shadow", with_shadow), backend, writer("shadow 100%")
                ),
            }
            samples = alternate(apps, event)
            for name, values in samples.items():
                p50, p99 = p50_p99(values)
                print(f"    {row_label(rows):<10} {name:<14} {p50:8.3f} {p99:8.3f} {lines[name]:6d}")
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
