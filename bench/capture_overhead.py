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
LARGE_BUDGET_MS: Final[float] = 5.0


def capture_edit(capture: bool) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for model in document["models"]:
            model.pop("capture", None)
        if capture:
            document["models"][0]["capture"] = {"sample_rate": 1.0, "inputs": ["input"], "outputs": True}

    return edit


def record_p99(app: Any, event: dict[str, Any], answer: bytes) -> float:
    """The capture step alone (sample, build and write the line), timed around each call."""
    from functions.domain.infer import InferCall
    from functions.domain.outcomes import Answered
    from functions.domain.validation import validate_infer_request
    from functions.handlers.router.capture import RequestCapture

    capture = RequestCapture(app.config, app.clients.log_sink)
    request = validate_infer_request(app.config.model("iris"), event["body"].encode())

    def record(index: int) -> None:
        call = InferCall(model="iris", body=request.body, correlation_id=f"bench-{index}")
        capture.record(call, Answered(answer, request))

    return percentile(timed(record), 0.99)


def main() -> None:
    print(f"capture cost, in-process, zero-latency endpoint, {REQUESTS} requests each after {WARM_UP} warm-up (ms)")
    print(f"    {'request':<10} {'router':<14} {'p50':>8} {'p99':>8} {'lines':>6}")
    one_row = large = float("-inf")
    with tempfile.TemporaryDirectory() as directory, open(os.devnull, "w") as sink:
        for rows in (1, 1000):
            event, answer = iris_answer(rows)
            lines = {"none": 0, "capture 100%": 0}

            def writer(name: str, lines: dict[str, int] = lines) -> Callable[[str], None]:
                def write(line: str) -> None:
                    lines[name] += line.startswith('{"capture":1')
                    print(line, file=sink)

                return write

            backend = zero_latency_backend(answer)
            apps = {
                name: router(
                    models_file(Path(directory), f"capture-{name != 'none'}", capture_edit(name != "none")),
                    backend,
                    writer(name),
                )
                for name in lines
            }
            samples = alternate(apps, event)
            for name, values in samples.items():
                p50, p99 = p50_p99(values)
                print(f"    {row_label(rows):<10} {name:<14} {p50:8.3f} {p99:8.3f} {lines[name]:6d}")
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
