"""``python -m bench.batching``: what dynamic batching buys the model server, measured over real HTTP.

For the iris model and a generated MLP (64 inputs, 4 hidden layers 512 wide, 10 classes; built by
``layers/models/mlp/build_mlp.py``; ``BENCH_MLP_WIDTH`` changes the hidden width), the real server
process (``python -m serving.server serve``) is started with its model directory laid out as
SageMaker lays it out, once with batching on and once off, and driven with 1-row requests at concurrency
1, 8 and 32 (one keep-alive connection per concurrent client). Prints requests/s, p50 and p99
latency and the mean batch the server actually ran (from its ``/_batching`` counters).

Target: at concurrency 32, batching gives >= 3x the unbatched throughput on the MLP with p99 no
worse than 2x. The process exits 1 when a run that measured the MLP at concurrency 32 misses it, or when
any request failed; a run that did not measure it (``BENCH_MODELS=iris``) says so and exits 0.
``BENCH_TARGET=report`` prints the verdict without failing on it (failed requests still fail the run).

Per model it also prints the model's own onnxruntime time (in-process, one intra-op thread) for 1 row and
for a full batch, its share of an unbatched request at concurrency 1, and the serial estimate of what batching
can give when only the model's part shrinks: request / (request - 1 row + full batch / its rows). On a 2-core
machine the 512-wide MLP runs 1 row in ~0.05 ms of a ~0.25 ms request (HTTP, JSON and validation are the
rest), so batching cannot reach 3x there. At 2048 wide the model is ~70% of a request and batching reached
3.1-3.8x in three runs on an otherwise quiet 2-core machine (2.0x once, with other jobs on both cores), so
``make bench`` enforces the target there; 1536 wide met it once (3.3x) and missed once (1.5x).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from functions.config.model_types import DEFAULT_MAX_BATCH_SIZE  # noqa: E402 - needs the repo root on sys.path
from functions.config.models import serving_signature  # noqa: E402 - needs the repo root on sys.path
from layers.models.mlp import build_mlp  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
WARMUP_SECONDS = 0.5
CONCURRENCY = tuple(int(value) for value in os.environ.get("BENCH_CONCURRENCY", "1,8,32").split(","))
MODELS = tuple(os.environ.get("BENCH_MODELS", "iris,mlp").split(","))
CONFIG_PATH = ROOT / "functions" / "models.json"
ENFORCE_TARGET = os.environ.get("BENCH_TARGET", "enforce") != "report"
MODEL_RUNS = 200


@dataclass(frozen=True)
class Cell:
    model: str
    batching: bool
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    mean_batch: float | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def layout_model(name: str, root: Path) -> tuple[Path, bytes]:
    """``root/<name>`` laid out as SageMaker unpacks a model (model.onnx + signature.json), and a request."""
    model_dir = root / name
    model_dir.mkdir(parents=True)
    rng = np.random.default_rng(0)
    if name == "iris":
        entry = next(model for model in json.loads(CONFIG_PATH.read_text())["models"] if model["name"] == "iris")
        shutil.copy(ROOT / "layers" / "models" / "iris" / "model.onnx", model_dir / "model.onnx")
        (model_dir / "signature.json").write_text(json.dumps(serving_signature(entry)))
        row = [5.1, 3.5, 1.4, 0.2]
        request = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [row]}]}
    elif name == "mlp":
        width = int(os.environ.get("BENCH_MLP_WIDTH", build_mlp.HIDDEN_WIDTH))
        cache = build_mlp.DEFAULT_OUTPUT_DIR.with_name(f"mlp-{width}")
        if not (cache / "model.onnx").exists():
            build_mlp.write(cache, hidden_width=width)
        shutil.copy(cache / "model.onnx", model_dir / "model.onnx")
        (model_dir / "signature.json").write_text(json.dumps(build_mlp.signature()))
        row = rng.random(build_mlp.INPUT_WIDTH).round(4).tolist()
        request = {"inputs": [{"name": "features", "shape": [1, len(row)], "datatype": "FP32", "data": [row]}]}
    else:
        raise SystemExit(f"unknown model {name!r} (iris, mlp)")
    return model_dir, json.dumps(request).encode()


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


def start_server(
    model_dir: Path, batching: bool, command: tuple[str, ...] = ("-m", "serving.server", "serve")
) -> tuple[subprocess.Popen[bytes], int]:
    """The server ``python <command>`` started on a free port, once its ``/ping`` answers."""
    port = free_port()
    env = {
        **os.environ,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
        "SERVING_BATCHING": "on" if batching else "off",
        "SERVING_INTRA_OP_THREADS": os.environ.get("SERVING_INTRA_OP_THREADS", "1"),
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([sys.executable, *command], env=env, cwd=ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get_json(port, "/ping")
            return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the server did not become healthy within 30 s")


async def _client(
    port: int, request: bytes, stop_at: float, measure_from: float, latencies: list[float], errors: list[int]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while (start := time.perf_counter()) < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length"))
            await reader.readexactly(length)
            if start >= measure_from:
                latencies.append(time.perf_counter() - start)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors.append(1)
    finally:
        writer.close()


async def drive(port: int, body: bytes, concurrency: int) -> tuple[list[float], int, float]:
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    latencies: list[float] = []
    errors: list[int] = []
    measure_from = time.perf_counter() + WARMUP_SECONDS
    stop_at = measure_from + SECONDS
    await asyncio.gather(
        *(_client(port, request, stop_at, measure_from, latencies, errors) for _ in range(concurrency))
    )
    return latencies, len(errors), SECONDS


def measure(model: str, batching: bool, port: int, body: bytes, concurrency: int) -> Cell:
    before = get_json(port, "/_batching")
    latencies, errors, seconds = asyncio.run(drive(port, body, concurrency))
    after = get_json(port, "/_batching")
    mean_batch = None
    if after["enabled"] and after["batches"] > before["batches"]:
        mean_batch = (after["rows"] - before["rows"]) / (after["batches"] - before["batches"])
    p50, p99 = np.percentile(np.asarray(latencies) * 1000, [50, 99])
    return Cell(model, batching, concurrency, len(latencies) / seconds, float(p50), float(p99), errors, mean_batch)


def print_table(cells: list[Cell]) -> None:
    print(f"\n{'model':<6} {'batching':<9} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} errors")
    for cell in cells:
        batch = f"{cell.mean_batch:6.1f}" if cell.mean_batch is not None else f"{'-':>6}"
        print(
            f"{cell.model:<6} {'on' if cell.batching else 'off':<9} {cell.concurrency:>4} {cell.requests_per_s:>8.0f}"
            f" {cell.p50_ms:>8.2f} {cell.p99_ms:>8.2f} {batch} {cell.errors}"
        )


TARGET_MODEL = "mlp"
TARGET_CONCURRENCY = 32
TARGET_SPEEDUP = 3.0
TARGET_P99_RATIO = 2.0


@dataclass(frozen=True)
class ModelCost:
    """The model's own onnxruntime time, in-process: ms for one row and for a batch of ``rows``."""

    one_row_ms: float
    batch_ms: float
    rows: int


def model_cost(model_dir: Path, body: bytes, rows: int) -> ModelCost:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_dir / "model.onnx"), options, providers=["CPUExecutionProvider"])
    entry = json.loads(body)["inputs"][0]
    row = np.asarray(entry["data"], dtype=np.float32).reshape(entry["shape"])

    def median_ms(feed: Any) -> float:
        for _ in range(20):
            session.run(None, {entry["name"]: feed})
        timings = []
        for _ in range(MODEL_RUNS):
            started = time.perf_counter()
            session.run(None, {entry["name"]: feed})
            timings.append(time.perf_counter() - started)
        return float(np.median(timings) * 1000)

    return ModelCost(median_ms(row), median_ms(np.repeat(row, rows, axis=0)), rows)


def print_ceiling(model: str, cost: ModelCost, cells: list[Cell]) -> None:
    print(
        f"{model} alone (onnxruntime in-process, 1 thread): 1 row {cost.one_row_ms:.3f} ms, "
        f"{cost.rows} rows {cost.batch_ms:.3f} ms ({cost.batch_ms / cost.rows:.3f} ms/row)"
    )
    single = next((c for c in cells if c.model == model and not c.batching and c.concurrency == 1), None)
    if single is None:
        return
    # Serially, batching can only shrink the model's part of a request: the rest (HTTP, JSON, validation) stays.
    per_request = 1000 / single.requests_per_s
    estimate = per_request / (max(per_request - cost.one_row_ms, 0.0) + cost.batch_ms / cost.rows)
    print(
        f"  unbatched at concurrency 1 a request takes {per_request:.3f} ms, the model "
        f"{min(cost.one_row_ms / per_request, 1.0):.0%} of it -> serial estimate of the batching gain ~{estimate:.1f}x"
        " (2 cores overlap one request's HTTP work with another's run, so the measured gain may exceed it)"
    )


def verdict(cells: list[Cell]) -> bool:
    """Print the batching gain per model at the highest concurrency; False when the target was measured and
    missed, or when any request failed."""
    ok = True
    failed = [cell for cell in cells if cell.errors]
    for cell in failed:
        print(f"{cell.model} batching {'on' if cell.batching else 'off'} at {cell.concurrency}: {cell.errors} errors")
        ok = False
    top = max(CONCURRENCY)
    found = {(cell.model, cell.batching): cell for cell in cells if cell.concurrency == top}
    measured = False
    for model in MODELS:
        on, off = found.get((model, True)), found.get((model, False))
        if on is None or off is None:
            continue
        speedup, p99_ratio = on.requests_per_s / off.requests_per_s, on.p99_ms / off.p99_ms
        line = f"{model} at concurrency {top}: batching gives {speedup:.1f}x throughput, p99 {p99_ratio:.2f}x"
        if model == TARGET_MODEL and top == TARGET_CONCURRENCY:
            measured = True
            met = speedup >= TARGET_SPEEDUP and p99_ratio <= TARGET_P99_RATIO
            line += f" -> target (>= {TARGET_SPEEDUP:g}x, p99 <= {TARGET_P99_RATIO:g}x) {'met' if met else 'NOT met'}"
            if not met and not ENFORCE_TARGET:
                line += " (BENCH_TARGET=report: not failing the run)"
            ok = ok and (met or not ENFORCE_TARGET)
        print(line)
    if not measured:
        print(f"target not evaluated: it needs {TARGET_MODEL} at concurrency {TARGET_CONCURRENCY} in this run")
    return ok


def main() -> int:
    print(f"cpus: {os.cpu_count()}; {SECONDS:g} s per cell after {WARMUP_SECONDS:g} s warm-up; 1-row requests")
    cells: list[Cell] = []
    costs: dict[str, ModelCost] = {}
    batch_rows = int(os.environ.get("SERVING_MAX_BATCH_SIZE", DEFAULT_MAX_BATCH_SIZE))
    with tempfile.TemporaryDirectory(prefix="opt_ml_") as root:
        for model in MODELS:
            model_dir, body = layout_model(model, Path(root))
            costs[model] = model_cost(model_dir, body, batch_rows)  # before any server runs beside it
            for batching in (False, True):
                process, port = start_server(model_dir, batching)
                try:
                    for concurrency in CONCURRENCY:
                        cell = measure(model, batching, port, body, concurrency)
                        cells.append(cell)
                        print_table([cell])
                finally:
                    process.terminate()
                    process.wait(timeout=10)
    print_table(cells)
    print()
    for model, cost in costs.items():
        print_ceiling(model, cost, cells)
    return 0 if verdict(cells) else 1


if __name__ == "__main__":
    raise SystemExit(main())
