"""``make bench``: what the output check costs the serverless route's answer.

(a) The check alone (``check_answer``: parse the answer, check every declared output) on iris's real answer
    to a 1-row and a 1,000-row request, p50/p99, next to ``json.loads`` of the same answer (the parse it
    cannot skip) and, for reference, the per-element loop the check replaced (every element in Python).
(b) Two routers in one process over the same zero-latency endpoint (botocore's ``before-send`` hook answers
    with the model's real response bytes, as in ``bench.router_overhead``): iris as the default config
    declares it (label in 0..2, probabilities finite, in [0, 1], rows summing to 1) and the same config with
    no contract (the answer passes through as bytes). The same requests alternate between the two, so drift
    on the host hits both alike.
Budget: the contract adds at most 1 ms to the router's p99 for a one-row request, and the check alone costs at
most 3 ms at p50 for a 1,000-row answer (its median: on a shared 2-core host under load, a 1,000-row p99 is the
scheduler's, json.loads alone reaching 5 ms).
"""

from __future__ import annotations

import json
import math
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
LARGE_BUDGET_MS: Final[float] = 3.0


def contract_edit(contract: bool) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        for model in document["models"]:
            model.pop("capture", None)
            if not contract:
                for output in model["outputs"]:
                    output.pop("contract", None)

    return edit


def per_element(answer: bytes) -> None:
    """The reference: iris's checks with one Python step per element (range, finite, then each row's sum)."""
    for output in json.loads(answer)["outputs"]:
        values = output["data"]
        low, high = (0, 2) if output["name"] == "label" else (0.0, 1.0)
        for value in values:
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(value)
            if not low <= value <= high:
                raise ValueError(value)
        if output["name"] == "probabilities":
            for start in range(0, len(values), 3):
                if abs(math.fsum(values[start + step] for step in range(3)) - 1.0) > 1e-3:
                    raise ValueError(start)


def main() -> None:
    from functions.config.models import load_models_config
    from functions.domain.output_contract import check_answer

    iris = load_models_config().model("iris")
    assert iris is not None
    print(f"output check cost, in-process, zero-latency endpoint, {REQUESTS} runs each after {WARM_UP} warm-up (ms)")
    print(f"    {'request':<10} {'what':<26} {'p50':>8} {'p99':>8}")
    one_row = large = float("-inf")
    with tempfile.TemporaryDirectory() as directory, open(os.devnull, "w") as sink:
        for rows in (1, 1000):
            label = row_label(rows)
            event, answer = iris_answer(rows)
            check = p50_p99(timed(lambda _, answer=answer: check_answer(iris, answer)))  # type: ignore[misc]
            for what, (p50, p99) in (
                ("check_answer", check),
                ("json.loads alone", p50_p99(timed(lambda _, answer=answer: json.loads(answer)))),  # type: ignore[misc]
                ("per-element loop (ref.)", p50_p99(timed(lambda _, answer=answer: per_element(answer)))),  # type: ignore[misc]
            ):
                print(f"    {label:<10} {what:<26} {p50:8.3f} {p99:8.3f}")
            backend = zero_latency_backend(answer)
            apps = {
                name: router(
                    models_file(Path(directory), f"contract-{name == 'contract'}", contract_edit(name == "contract")),
                    backend,
                    lambda line: print(line, file=sink),
                )
                for name in ("no contract", "contract")
            }
            samples = alternate(apps, event)
            for name, values in samples.items():
                p50, p99 = p50_p99(values)
                what = f"router, {name}"
                print(f"    {label:<10} {what:<26} {p50:8.3f} {p99:8.3f}")
            added = percentile(samples["contract"], 0.99) - percentile(samples["no contract"], 0.99)
            print(f"    {label:<10} {'router, added at p99':<26} {added:17.3f}")
            if rows == 1:
                one_row = max(added, check[1])
            else:
                large = check[0]
    verdict = "within" if one_row <= BUDGET_MS else "OVER"
    print(f"    the contract adds {one_row:.3f} ms at p99 to a one-row request at most (whole requests or the check "
          f"alone): {verdict} the {BUDGET_MS:g} ms budget")  # fmt: skip
    verdict = "within" if large <= LARGE_BUDGET_MS else "OVER"
    print(f"    the check costs {large:.3f} ms at p50 for a 1000-row answer: {verdict} the "
          f"{LARGE_BUDGET_MS:g} ms budget")  # fmt: skip
    if one_row > BUDGET_MS or large > LARGE_BUDGET_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
