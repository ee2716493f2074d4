"""``python -m bench.load``: fixed-concurrency load on the local stack, healthy and with injected faults.

The local stack (``local.stack.start_local_stack``, sync path only) starts in-process: the local SageMaker
runtime serving the real iris model and the local API in front of the router handler. ``--clients``
keep-alive connections (default 32) send infer requests back to back for ``--duration`` seconds (default
60) per scenario:

- ``none``: no fault.
- ``mixed``: 10% of endpoint calls fail, by type (throttling, not ready, internal failure, unavailable,
  a model error, a dropped connection), with a long-tailed latency, and the endpoint throttles calls
  above a concurrency limit (serverless ``MaxConcurrency``), all set through the runtime's fault API
  when the measured window opens (the warm-up before it runs healthy).

The requests go in equal shares to three models served by the same ``iris`` endpoint, which differ only in
their ``resilience.fallback``: ``iris`` (none: a fault the retries cannot absorb is a 503/504),
``iris-static`` (a declared answer) and ``iris-last-good`` (the last answer to the same input).

Per scenario: throughput, the status distribution (overall and per model), p50/p95/p99 latency, degraded
answers (those carrying ``X-Inference-Degraded``) by reason and fallback, and the verdict "zero 500s, every
request answered". Exits 1 when a 500 or an unanswered request was seen.

One local API serialises its requests, as one Lambda environment does (``local/api_gateway.py``), so
with ``--environments 1`` the load measures one environment with a queue in front of it, and the
endpoint never sees more than one call at a time (its concurrency throttle cannot bite). API Gateway
fans out to many environments; ``--environments N`` (default 4) emulates that with N local APIs, each
in front of its own copy of the handler module (its own router, breakers and cache, as separate Lambda
environments have), and the clients spread round-robin over them. All of it shares one Python process
and its GIL with the load generator, so absolute numbers are a floor, not a forecast.

The client is a lean asyncio loop over raw sockets with pre-built requests, so the load generator does
not starve the server threads of the GIL more than it must.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench.load_driver import WARMUP_S, drive, percentile

ROOT: Final[Path] = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ENDPOINT: Final[str] = "iris"
# The base model and its fallback variants (same endpoint, same inputs): name -> resilience.fallback.
MODELS: Final[dict[str, Any]] = {
    "iris": None,
    "iris-static": {"static": {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}},
    "iris-last-good": "last_good",
}
# 10% of endpoint calls fail, spread over the transient kinds plus one model error and one network failure.
MIXED_FAULT: Final[dict[str, Any]] = {
    "errors": {
        "ThrottlingException": 0.03,
        "ModelNotReadyException": 0.02,
        "InternalFailure": 0.015,
        "ServiceUnavailable": 0.015,
        "ModelError": 0.01,
        "DropConnection": 0.01,
    },
    "model_status": 500,
    "latency": {"distribution": "lognormal", "median_ms": 2, "p99_ms": 40, "max_ms": 200},
    "seed": 6,
}
STATUS_COLUMNS: Final[tuple[str, ...]] = ("200", "202", "4xx", "429", "503", "504", "502", "500", "other")


@dataclass(frozen=True)
class Report:
    scenario: str
    clients: int
    environments: int
    seconds: float
    requests: int
    statuses: dict[int, int]
    statuses_by_model: dict[str, dict[int, int]]
    degraded: dict[str, int]
    unanswered: dict[str, int]
    p50_ms: float
    p95_ms: float
    p99_ms: float
    endpoint_calls: int

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.seconds

    @property
    def ok(self) -> bool:
        return self.statuses.get(500, 0) == 0 and not self.unanswered


def request_bytes(model: str, row: list[float], host: str) -> bytes:
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}, separators=(",", ":")
    ).encode()
    head = (
        f"POST /v2/models/{model}/infer HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def requests_for(host: str) -> list[tuple[str, bytes]]:
    """A few distinct inputs per model, so a per-input fallback (last good answer) has something to find."""
    rows = [[round(4.5 + 0.2 * i, 1), round(3.0 + 0.05 * i, 2), round(1.2 + 0.3 * i, 1), 0.2] for i in range(16)]
    return [(model, request_bytes(model, row, host)) for row in rows for model in MODELS]


def write_models_config(directory: Path) -> Path:
    """The repository's model config plus the fallback variants of iris (``MODELS``)."""
    from local.model_variants import models_with_variants, write_models_with_variants

    base = next(m for m in models_with_variants({})["models"] if m["name"] == ENDPOINT)
    variants = {
        name: {"resilience": {**base.get("resilience", {}), "fallback": fallback}}
        for name, fallback in MODELS.items()
        if name != "iris"
    }
    return write_models_with_variants(directory, variants)


def put_fault(runtime_url: str, document: dict[str, Any] | None) -> None:
    if document is None:
        request = urllib.request.Request(f"{runtime_url}/_local/faults", method="DELETE")
    else:
        data = json.dumps(document).encode()
        request = urllib.request.Request(f"{runtime_url}/_local/faults/{ENDPOINT}", data=data, method="PUT")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


class _Discard(io.TextIOBase):
    def write(self, text: str) -> int:
        return len(text)


def run_scenario(
    scenario: str, ports: list[int], runtime: Any, clients: int, seconds: float, mixed: dict[str, Any]
) -> Report:
    put_fault(runtime.url, None)
    # The warm-up runs healthy, as the system did before the faults began: the last good answers exist.
    start_faults = (lambda: put_fault(runtime.url, mixed)) if scenario == "mixed" else None
    calls_before = sum(getattr(runtime, "sync_invocations", Counter()).values())
    # Every degraded answer prints its EMF metric document (Powertools' single_metric, which no setting
    # silences): tens of thousands of lines that would bury the report, which counts them from the headers.
    with contextlib.redirect_stdout(_Discard()):
        request_sets = {port: requests_for(f"127.0.0.1:{port}") for port in ports}
        tally = asyncio.run(drive(request_sets, clients, seconds, start_faults))
    calls = sum(getattr(runtime, "sync_invocations", Counter()).values()) - calls_before
    put_fault(runtime.url, None)
    latencies = sorted(tally.latencies_s)
    return Report(
        scenario=scenario,
        clients=clients,
        environments=len(ports),
        seconds=seconds,
        requests=len(latencies),
        statuses=dict(sorted(tally.statuses.items())),
        statuses_by_model={
            model: dict(sorted(tally.statuses_by_model.get(model, Counter()).items())) for model in MODELS
        },
        degraded=dict(tally.degraded),
        unanswered=dict(tally.unanswered),
        p50_ms=percentile(latencies, 0.50) * 1000,
        p95_ms=percentile(latencies, 0.95) * 1000,
        p99_ms=percentile(latencies, 0.99) * 1000,
        endpoint_calls=calls,
    )


def status_columns(statuses: dict[int, int]) -> dict[str, int]:
    columns = dict.fromkeys(STATUS_COLUMNS, 0)
    for status, count in statuses.items():
        name = str(status)
        if name in columns and name != "4xx":
            columns[name] += count
        elif 400 <= status < 500:
            columns["4xx"] += count
        else:
            columns["other"] += count
    return columns


def print_report(report: Report) -> None:
    columns = status_columns(report.statuses)
    print(
        f"\nscenario {report.scenario}: {report.clients} clients, {report.environments} environment(s), "
        f"{report.seconds:g} s measured after {WARMUP_S:g} s warm-up"
    )
    print(f"  throughput   {report.requests_per_s:8.1f} req/s ({report.requests} answered)")
    print(f"  latency      p50 {report.p50_ms:.1f} ms   p95 {report.p95_ms:.1f} ms   p99 {report.p99_ms:.1f} ms")
    print("  statuses     " + "  ".join(f"{name}: {count}" for name, count in columns.items()))
    for model, statuses in report.statuses_by_model.items():
        row = "  ".join(f"{name}: {count}" for name, count in status_columns(statuses).items() if count)
        print(f"    {model:<15}{row}")
    print(f"  degraded     {sum(report.degraded.values())}")
    for why, count in sorted(report.degraded.items(), key=lambda item: -item[1]):
        print(f"    {count:>8}  {why}")
    print(f"  endpoint     {report.endpoint_calls} calls in the scenario (warm-up and retries included)")
    unanswered = sum(report.unanswered.values())
    verdict = "zero 500s, every request answered" if report.ok else "FAILED"
    print(f"  verdict      {verdict} (500s: {columns['500']}, unanswered: {unanswered} {report.unanswered or ''})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32, help="concurrent keep-alive clients (default 32)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per scenario (default 60)")
    parser.add_argument("--faults", choices=("none", "mixed", "both"), default="both", help="scenarios to run")
    parser.add_argument(
        "--environments", type=int, default=4, help="local APIs, one Lambda environment each (default 4)"
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=None,
        help="the endpoint's concurrency limit in the mixed scenario (default: environments - 1, at least 1)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the reports to this JSON file")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.duration <= 0 or args.environments < 1:
        parser.error("--clients and --environments must be at least 1 and --duration positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # One warning per degraded answer at 100s of req/s would drown the report; errors still show.
    saved_environment = dict(os.environ)
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    try:
        return load(args)
    finally:  # main() also runs inside the test process: leave its environment as it was
        os.environ.clear()
        os.environ.update(saved_environment)


def load(args: argparse.Namespace) -> int:
    from functions.config.models import load_models_config
    from local.api_gateway import LocalApiGateway
    from local.sagemaker_runtime import LocalSageMakerRuntime
    from local.stack import serverless_endpoints, start_local_stack

    # The runtime serves the repository's iris (so its answers name "iris"); the router knows the variants too.
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config()), port=0).start()
    with tempfile.TemporaryDirectory() as directory:
        config = write_models_config(Path(directory))
        try:
            stack = start_local_stack(api_port=0, config_path=str(config), runtime=runtime, async_options=None)
        except BaseException:
            runtime.stop()
            raise
        try:
            return run(args, stack, LocalApiGateway)
        finally:
            stack.stop()
            runtime.stop()


def run(args: argparse.Namespace, stack: Any, gateway_type: Any) -> int:
    from local.stack import router_from_env

    gateways = []
    try:
        gateways = [gateway_type(router_from_env(), port=0).start() for _ in range(1, args.environments)]
        ports = [int(stack.api.url.rsplit(":", 1)[1])] + [int(g.url.rsplit(":", 1)[1]) for g in gateways]
        max_concurrency = args.max_concurrency or max(1, args.environments - 1)
        mixed = {**MIXED_FAULT, "max_concurrency": max_concurrency}
        print(
            f"bench.load: models {', '.join(MODELS)} on endpoint {ENDPOINT!r}, cpus {os.cpu_count()}, "
            f"{args.clients} clients over "
            f"{args.environments} local API environment(s) (each serialises its requests, as one Lambda "
            f"environment does)"
        )
        if args.faults != "none":
            print(f"mixed faults: {json.dumps(mixed)}")
        scenarios = ["none", "mixed"] if args.faults == "both" else [args.faults]
        reports = []
        for scenario in scenarios:
            report = run_scenario(scenario, ports, stack.runtime, args.clients, args.duration, mixed)
            print_report(report)
            reports.append(report)
        if args.json is not None:
            documents = [{**report.__dict__, "requests_per_s": report.requests_per_s} for report in reports]
            args.json.write_text(json.dumps(documents, indent=2, default=str))
        return 0 if all(report.ok for report in reports) else 1
    finally:
        for gateway in gateways:
            gateway.stop()


if __name__ == "__main__":
    sys.exit(main())
