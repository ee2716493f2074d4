"""The model server a SageMaker container runs: ``serve`` listens on port 8080 and answers ``GET /ping``
and ``POST /invocations`` for the model under ``/opt/ml/model`` (``model.onnx`` + ``signature.json``, the
model's name, version, platform, inputs and outputs: :data:`functions.config.models.SIGNATURE_FIELDS`).

The model loads on a background thread so ``/ping`` can say 503 until it is ready, as SageMaker expects.
Every response carries ``Content-Length`` (async endpoints require it).

Environment (SageMaker's own variables first):

- ``SAGEMAKER_BIND_TO_PORT`` (8080), ``SM_MODEL_DIR`` (``/opt/ml/model``)
- ``SAGEMAKER_MODEL_SERVER_WORKERS`` (1): server processes sharing the port. More than one splits the
  traffic, and so the batches, between processes; raise it only when one process is CPU-bound in Python.
  Each worker loads the model before it accepts connections, so ``/ping`` waits (rather than 503s) until
  the first worker is ready.
- ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60): seconds a request may wait for its model run before a 504;
  SageMaker itself gives ``/invocations`` 60 s.
- ``SERVING_BATCHING`` / ``SERVING_MAX_BATCH_SIZE`` / ``SERVING_MAX_QUEUE_DELAY_MS``: dynamic batching
  (:class:`serving.batching.BatchingSettings`). The templates set them on the ``CfnModel`` from the
  model's ``batching`` block; this environment is the only place the server learns them from.
- ``SERVING_INTRA_OP_THREADS`` (0 = onnxruntime decides), ``SERVING_PROVIDERS`` (comma-separated
  execution providers; empty picks CUDA when the build has it, else CPU; a provider named here that the
  session cannot use, e.g. CUDA whose libraries fail to load, fails the load: ``/ping`` stays 503),
  ``LOG_LEVEL`` (INFO).

``GET /_batching`` reports the batching counters; SageMaker never routes it, it is for tests and benchmarks.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from functions.config.models import parse_model_signature
from serving.batching import BatchingSettings
from serving.service import Answer, InvocationService

if TYPE_CHECKING:
    from functions.adapters.onnx_model import OnnxModel

logger = logging.getLogger("serving")
MODEL_FILE = "model.onnx"
SIGNATURE_FILE = "signature.json"
# SageMaker sends at most a 6 MB body to /invocations on real-time endpoints; async input can be larger.
MAX_REQUEST_BYTES = 1024 * 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """The server's environment, read once at start; see the module docstring for each variable."""

    port: int = 8080
    model_dir: Path = Path("/opt/ml/model")
    workers: int = 1
    timeout_s: float = 60.0
    intra_op_threads: int = 0
    providers: str | None = None
    batching: BatchingSettings = field(default_factory=BatchingSettings)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServerSettings:
        settings = cls(
            port=int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
            model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
            workers=int(environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or "1"),
            timeout_s=float(environ.get("SAGEMAKER_MODEL_SERVER_TIMEOUT") or "60"),
            intra_op_threads=int(environ.get("SERVING_INTRA_OP_THREADS", "0")),
            providers=environ.get("SERVING_PROVIDERS") or None,
            batching=BatchingSettings.from_environ(environ),
        )
        if settings.workers < 1 or settings.timeout_s <= 0:
            raise ValueError("SAGEMAKER_MODEL_SERVER_WORKERS and SAGEMAKER_MODEL_SERVER_TIMEOUT must be positive")
        return settings


def load_model(model_dir: Path, intra_op_threads: int = 0, providers: str | None = None) -> OnnxModel:
    import onnxruntime as ort  # heavy: imported once the port is open so /ping can answer 503 meanwhile

    from functions.adapters.onnx_model import OnnxModel, choose_providers, requested_providers

    signature_path = model_dir / SIGNATURE_FILE
    config = parse_model_signature(json.loads(signature_path.read_text(encoding="utf-8")), str(signature_path))
    chosen = choose_providers(providers, ort.get_available_providers())
    # What SERVING_PROVIDERS names must really run; a provider picked on our own may fall back (with a warning).
    return OnnxModel(
        config,
        model_dir / MODEL_FILE,
        intra_op_threads=intra_op_threads,
        providers=chosen,
        required_providers=requested_providers(providers),
    )


def write_answer(handler: BaseHTTPRequestHandler, answer: Answer, extra_headers: dict[str, str] | None = None) -> None:
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.body)))
    for name, value in (extra_headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(answer.body)


def read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request body, or None after answering 411/413 when it has no usable length."""
    length_header = handler.headers.get("Content-Length")
    if length_header is None or not length_header.isdigit():
        write_answer(handler, Answer(HTTPStatus.LENGTH_REQUIRED, b'{"error":"Content-Length is required"}'))
        return None
    length = int(length_header)
    if length > MAX_REQUEST_BYTES:
        write_answer(handler, Answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b'{"error":"body too large"}'))
        return None
    return handler.rfile.read(length)


def make_handler(service: InvocationService) -> type[BaseHTTPRequestHandler]:
    class ContainerHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes; with Nagle on, the second waits for the client's delayed
        # ACK (~40 ms on Linux) on every keep-alive request.
        disable_nagle_algorithm = True

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
            logger.debug(format, *args)

    return ContainerHandler


class _SharedSocketServer(ThreadingHTTPServer):
    """A threading server whose listening socket may be shared by forked workers.

    The listening socket is non-blocking so a worker that loses the race for a connection goes back to
    its select loop instead of blocking in ``accept`` (where it would not see a shutdown).
    """

    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = self.socket.accept()
        connection.setblocking(True)
        return connection, address


def run_worker(server: ThreadingHTTPServer, settings: ServerSettings, *, load_first: bool = False) -> None:
    """Serve on ``server``'s socket in this process until SIGTERM.

    The model loads in the background while ``/ping`` answers 503, or, with ``load_first``, before this
    process accepts any connection: a worker sharing the socket with others must not take requests it
    cannot answer while a loaded sibling could.
    """
    service = InvocationService(batching=settings.batching, timeout_s=settings.timeout_s)
    server.RequestHandlerClass = make_handler(service)

    def load() -> None:
        try:
            service.model = load_model(settings.model_dir, settings.intra_op_threads, settings.providers)
            logger.info(
                "model loaded from %s (pid %d); batching: %s",
                settings.model_dir,
                os.getpid(),
                json.loads(service.batching_stats().body),
            )
        except Exception:
            logger.exception("model failed to load from %s; /ping stays unhealthy", settings.model_dir)

    if load_first:
        load()
        if service.model is None:
            return
    else:
        threading.Thread(target=load, name="model-loader", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


def serve(argv: list[str] | None = None) -> None:
    """Entry point of the container (``serve``), as SageMaker runs it: ``docker run IMAGE serve``."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    settings = ServerSettings.from_environ(os.environ)
    server = _SharedSocketServer(("0.0.0.0", settings.port), BaseHTTPRequestHandler)  # noqa: S104 - the container must listen on all interfaces
    logger.info("serving on port %d with %d worker process(es)", settings.port, settings.workers)
    if settings.workers == 1:
        run_worker(server, settings)
        return
    server.socket.setblocking(False)
    children: list[int] = []
    for _ in range(settings.workers):
        pid = os.fork()
        if pid == 0:  # the child: onnxruntime is imported only here, after the fork
            run_worker(server, settings, load_first=True)
            os._exit(0)
        children.append(pid)

    def stop(*_: Any) -> None:
        for child in children:
            os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    serve(sys.argv[1:])
