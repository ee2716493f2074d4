"""``python -m bench.serving_server``: the model container under granian (what ``serve`` runs) against gunicorn
and the hand-written server both replaced, side by side in one run.

Each server process serves the same model directory (laid out as SageMaker unpacks it) with the same worker
count (``BENCH_WORKERS``, default 1, as ``SAGEMAKER_MODEL_SERVER_WORKERS``), dynamic batching on with the same
settings, one intra-op thread, and is driven in turn by the same closed-loop load: 1-row requests from 1, 8
and 32 concurrent clients (``BENCH_CONCURRENCY``), one keep-alive connection each, ``BENCH_SECONDS`` (3) per
cell after a 0.5 s warm-up, in ``BENCH_ROUNDS`` (3) rounds that alternate the servers. Models: iris and the
generated MLP (``BENCH_MODELS``, ``BENCH_MLP_WIDTH``).

Prints server, model, concurrency, requests/s, p50/p95/p99 latency and errors, then gunicorn's and granian's
throughput and p99 relative to the old server per cell. Exits 1 when any request failed; the speed is
reported, not enforced (on a shared 2-core machine the cells move by ~10% between runs). Measured there with
``BENCH_SECONDS=2``, under other jobs' load: granian 1.27-1.78x the old server's requests/s, p99 0.51-1.05x;
gunicorn 0.51-0.85x, p99 0.88-1.82x. gunicorn's gthread worker passes each request from its main loop to a
pool thread and back through a pipe, where the old server's connection thread just reads the next request;
granian parses HTTP in Rust and hands the WSGI call straight to a blocking thread.

The old server and the gunicorn configuration live here only, for this comparison: ``python -m
bench.serving_server legacy`` runs the old one (the ``http.server`` pre-fork design: ``os.fork`` workers
sharing one listening socket, one thread per connection), ``python -m bench.serving_server gunicorn`` gunicorn.
"""

from __future__ import annotations

import asyncio
import math
import os
import signal
import socket
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
from gunicorn.app.base import BaseApplication

from bench.batching import CONCURRENCY, MODELS, SECONDS, WARMUP_SECONDS, drive, layout_model, start_server
from serving.server import ServerSettings, load_into, read_body, worker_app, write_answer
from serving.service import Answer, InvocationService
from serving.wsgi import ContainerApp

SERVERS = {
    "http.server": ("-m", "bench.serving_server", "legacy"),
    "gunicorn": ("-m", "bench.serving_server", "gunicorn"),
    "granian": ("-m", "serving.server", "serve"),
}
WORKERS = os.environ.get("BENCH_WORKERS", "1")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


# --- the replaced server, kept for this comparison only ---


def _legacy_handler(service: InvocationService) -> type[BaseHTTPRequestHandler]:
    class ContainerHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in two writes

        def do_GET(self) -> None:
            if self.path == "/ping":
                write_answer(self, service.ping())
            elif self.path == "/_batching":
                write_answer(self, service.batching_stats())
            else:
                write_answer(self, Answer(404, b'{"error":"not found"}'))

        def do_POST(self) -> None:
            if self.path != "/invocations":
                write_answer(self, Answer(404, b'{"error":"not found"}'))
                return
            body = read_body(self)
            if body is not None:
                write_answer(self, service.invoke(body))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return ContainerHandler


class _SharedSocketServer(ThreadingHTTPServer):
    """A threading server whose non-blocking listening socket forked workers share: one that loses the race
    for a connection goes back to its select loop instead of blocking in ``accept``."""

    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        connection.setblocking(True)
        return connection, address


def _legacy_worker(server: ThreadingHTTPServer, settings: ServerSettings, *, load_first: bool) -> None:
    service = InvocationService(batching=settings.batching, timeout_s=settings.timeout_s)
    server.RequestHandlerClass = _legacy_handler(service)
    if load_first:
        load_into(service, settings)
    else:
        threading.Thread(target=load_into, args=(service, settings), daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def legacy_serve() -> None:
    settings = ServerSettings.from_environ(os.environ)
    server = _SharedSocketServer(("0.0.0.0", settings.port), BaseHTTPRequestHandler)
    if settings.workers == 1:
        _legacy_worker(server, settings, load_first=False)
        return
    server.socket.setblocking(False)
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:
            _legacy_worker(server, settings, load_first=True)
            os._exit(0)
        children.append(pid)

    def stop_children(*_: object) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop_children)
    for child in children:
        os.waitpid(child, 0)


# --- gunicorn, kept for this comparison only ---


class GunicornServer(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn serving :class:`ContainerApp` with ``settings.workers`` processes of ``settings.threads`` threads
    (``gthread`` workers, so concurrent requests reach one process's batcher), configured as the container
    was: the model loads after the fork, and with several workers each waits for it before accepting."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options: dict[str, Any] = {
            "bind": f"0.0.0.0:{settings.port}",
            "workers": settings.workers,
            "worker_class": "gthread",
            "threads": settings.threads,
            "graceful_timeout": math.ceil(settings.timeout_s),
            "errorlog": "-",
            "loglevel": "warning",
            # gunicornc's control socket would be one fixed path per user, shared by every server started.
            "control_socket_disable": True,
        }
        for name, value in options.items():
            self.cfg.set(name, value)

    def load(self) -> ContainerApp:
        return worker_app(self.settings)


# --- the comparison ---


@dataclass(frozen=True)
class Row:
    server: str
    model: str
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int


@dataclass
class Pooled:
    """The requests of every round of one (server, model, concurrency) cell."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def add(self, port: int, body: bytes, concurrency: int) -> None:
        latencies, errors, seconds = asyncio.run(drive(port, body, concurrency))
        self.latencies += latencies
        self.errors += errors
        self.seconds += seconds

    def row(self, server: str, model: str, concurrency: int) -> Row:
        p50, p95, p99 = np.percentile(np.asarray(self.latencies) * 1000, [50, 95, 99])
        rate = len(self.latencies) / self.seconds
        return Row(server, model, concurrency, rate, float(p50), float(p95), float(p99), self.errors)


def print_rows(rows: list[Row]) -> None:
    print(f"{'server':<12} {'model':<6} {'conc':>4} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} errors")
    for row in rows:
        print(
            f"{row.server:<12} {row.model:<6} {row.concurrency:>4} {row.requests_per_s:>8.0f} {row.p50_ms:>8.2f}"
            f" {row.p95_ms:>8.2f} {row.p99_ms:>8.2f} {row.errors}"
        )


def print_comparison(rows: list[Row]) -> None:
    """Each well-kept server's throughput and p99 relative to the old server's, per model and concurrency."""
    found = {(row.server, row.model, row.concurrency): row for row in rows}
    for (server, model, concurrency), new in found.items():
        old = found.get(("http.server", model, concurrency))
        if server != "http.server" and old is not None:
            print(
                f"{model} at {concurrency}: {server} {new.requests_per_s / old.requests_per_s:.2f}x the requests/s,"
                f" p99 {new.p99_ms / old.p99_ms:.2f}x"
            )


def main() -> int:
    os.environ["SAGEMAKER_MODEL_SERVER_WORKERS"] = WORKERS
    print(
        f"cpus: {os.cpu_count()}; {WORKERS} worker(s) each; batching on; {SECONDS:g} s per cell after "
        f"{WARMUP_SECONDS:g} s warm-up; 1-row requests"
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="opt_ml_") as root:
        for model in MODELS:
            model_dir, body = layout_model(model, Path(root))
            started = {server: start_server(model_dir, True, command) for server, command in SERVERS.items()}
            try:
                for concurrency in CONCURRENCY:
                    # Both servers run throughout and take turns round by round, so the load of anything else
                    # on the machine falls on both alike; the idle one costs the driven one nothing measurable.
                    pooled = {server: Pooled() for server in SERVERS}
                    for _ in range(ROUNDS):
                        for server, (_, port) in started.items():
                            pooled[server].add(port, body, concurrency)
                    cells = [cell.row(server, model, concurrency) for server, cell in pooled.items()]
                    print_rows(cells)
                    rows += cells
            finally:
                for process, _ in started.values():
                    process.terminate()
                    process.wait(timeout=10)
    print()
    print_rows(rows)
    print()
    print_comparison(rows)
    failed = [row for row in rows if row.errors]
    for row in failed:
        print(f"{row.server} {row.model} at {row.concurrency}: {row.errors} errors")
    return 1 if failed else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["legacy"]:
        legacy_serve()
    elif sys.argv[1:] == ["gunicorn"]:
        GunicornServer(ServerSettings.from_environ(os.environ)).run()
    else:
        raise SystemExit(main())
