"""The model server a SageMaker container runs: ``serve`` listens on port 8080 and answers ``GET /ping``
and ``POST /invocations`` for the model under ``/opt/ml/model`` (``model.onnx`` + ``signature.json``, the
model's name, version, platform, inputs and outputs: :data:`functions.config.models.SIGNATURE_FIELDS`).

granian (a Rust HTTP server) serves :class:`serving.wsgi.ContainerApp` through its WSGI interface, each worker
running the app on ``SERVING_THREADS`` blocking threads so concurrent requests reach one process's dynamic
batcher. Measured side by side (``python -m bench.serving_server``, 2 cores, 1 worker, iris and MLP at 1/8/32
clients) it gave 1.3-1.8x the requests/s of a hand-written ``http.server`` pre-fork server with a p99 no worse
(0.5-1.05x), where gunicorn's ``gthread`` worker, SageMaker's bring-your-own-container convention, gave
0.5-0.85x with a p99 up to 1.8x. Each worker loads the model after the fork (onnxruntime sessions must not
cross one) on a background thread, so ``/ping`` says 503 until it is ready, as SageMaker expects. SIGTERM
stops gracefully: workers stop accepting and requests in flight finish first.

Environment (SageMaker's own variables first):

- ``SAGEMAKER_BIND_TO_PORT`` (8080), ``SM_MODEL_DIR`` (``/opt/ml/model``)
- ``SAGEMAKER_MODEL_SERVER_WORKERS`` (1): server processes sharing the port. More than one splits the
  traffic, and so the batches, between processes; raise it only when one process is CPU-bound in Python.
  With several, each worker loads the model before it accepts connections, so ``/ping`` waits (rather than
  503s) until the first worker is ready and no request reaches a worker still loading beside a ready one.
- ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` (60): seconds a request may wait for its model run before a 504, and
  how long SIGTERM waits for requests in flight; SageMaker itself gives ``/invocations`` 60 s.
- ``SERVING_THREADS`` (64): requests one worker handles at once (granian's blocking threads and its
  backpressure); the default keeps two full batches of the default 32 rows in flight (one running while the
  next gathers) for 1-row requests.
- ``SERVING_MAX_BODY_BYTES``: the largest request body (default 6 MB, see :mod:`serving.request_body`).
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
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from granian import Granian
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server.common import AbstractServer

from functions.config.limits import ASYNC_MAX_INPUT_BYTES
from functions.config.models import parse_model_signature
from serving.batching import BatchingSettings
from serving.request_body import DEFAULT_MAX_BODY_BYTES, body_or_refusal, max_body_bytes_from_environ
from serving.service import Answer, InvocationService
from serving.wsgi import ContainerApp

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

    from functions.adapters.onnx_model import OnnxModel

logger = logging.getLogger("serving")
MODEL_FILE = "model.onnx"
SIGNATURE_FILE = "signature.json"


@dataclass(frozen=True)
class ServerSettings:
    """The server's environment, read once at start; see the module docstring for each variable."""

    port: int = 8080
    model_dir: Path = Path("/opt/ml/model")
    workers: int = 1
    threads: int = 64
    timeout_s: float = 60.0
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    intra_op_threads: int = 0
    providers: str | None = None
    batching: BatchingSettings = field(default_factory=BatchingSettings)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ServerSettings:
        settings = cls(
            port=int(environ.get("SAGEMAKER_BIND_TO_PORT", "8080")),
            model_dir=Path(environ.get("SM_MODEL_DIR", "/opt/ml/model")),
            workers=int(environ.get("SAGEMAKER_MODEL_SERVER_WORKERS") or "1"),
            threads=int(environ.get("SERVING_THREADS") or "64"),
            timeout_s=float(environ.get("SAGEMAKER_MODEL_SERVER_TIMEOUT") or "60"),
            max_body_bytes=max_body_bytes_from_environ(environ),
            intra_op_threads=int(environ.get("SERVING_INTRA_OP_THREADS", "0")),
            providers=environ.get("SERVING_PROVIDERS") or None,
            batching=BatchingSettings.from_environ(environ),
        )
        if settings.workers < 1 or settings.threads < 1 or settings.timeout_s <= 0:
            raise ValueError(
                "SAGEMAKER_MODEL_SERVER_WORKERS, SERVING_THREADS and SAGEMAKER_MODEL_SERVER_TIMEOUT must be positive"
            )
        return settings


def load_model(model_dir: Path, intra_op_threads: int = 0, providers: str | None = None) -> OnnxModel:
    import onnxruntime as ort  # heavy: imported in the worker once it serves, so /ping can answer 503 meanwhile

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


def load_into(service: InvocationService, settings: ServerSettings) -> None:
    """Load the model into ``service``; a failure is logged and leaves ``/ping`` at 503."""
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


def write_answer(handler: BaseHTTPRequestHandler, answer: Answer, extra_headers: dict[str, str] | None = None) -> None:
    """Send ``answer`` from an ``http.server`` handler (the local SageMaker runtime serves the contract so)."""
    handler.send_response(answer.status)
    handler.send_header("Content-Type", answer.content_type)
    handler.send_header("Content-Length", str(len(answer.body)))
    for name, value in (extra_headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(answer.body)


def read_body(handler: BaseHTTPRequestHandler, max_bytes: int = ASYNC_MAX_INPUT_BYTES) -> bytes | None:
    """An ``http.server`` handler's request body, or None after answering 411/413/400 (see
    :func:`serving.request_body.body_or_refusal`); by default bounded by the most SageMaker ever delivers."""
    body = body_or_refusal(handler.headers.get("Content-Length"), max_bytes, handler.rfile.read)
    if isinstance(body, Answer):
        write_answer(handler, body)
        return None
    return body


def worker_app(settings: ServerSettings) -> ContainerApp:
    """One worker's application, built in the worker process (onnxruntime sessions must not cross a fork).

    With one worker the model loads on a background thread, so ``/ping`` answers 503 until it is ready. With
    several, the worker loads it before it returns: granian's workers share one listening socket and a worker
    accepts only once its application exists, so no request reaches a worker still loading beside a ready one.
    """
    configure_logging()  # a worker started by ``spawn`` (Python 3.14's default) inherits no logging setup
    service = InvocationService(
        batching=settings.batching, timeout_s=settings.timeout_s, max_body_bytes=settings.max_body_bytes
    )
    if settings.workers == 1:
        threading.Thread(target=load_into, args=(service, settings), name="model-loader", daemon=True).start()
    else:
        load_into(service, settings)
    return ContainerApp(service, settings.max_body_bytes)


def container_server(settings: ServerSettings) -> AbstractServer[Any]:
    """granian serving :func:`worker_app` with ``settings.workers`` processes of ``settings.threads`` threads.

    Example:
        >>> settings = ServerSettings.from_environ(os.environ)
        >>> container_server(settings).serve(target_loader=partial(worker_app, settings), wrap_loader=False)
    """
    return Granian(
        "serving.server:worker_app",
        address="0.0.0.0",  # noqa: S104  # SageMaker reaches the container from outside it
        port=settings.port,
        interface=Interfaces.WSGI,
        workers=settings.workers,
        # WSGI calls block, and a request waiting for its batch holds its thread: as many threads as requests.
        blocking_threads=settings.threads,
        # Requests beyond the threads wait in granian (not in Python) until a thread frees.
        backpressure=settings.threads,
        http=HTTPModes.http1,
        websockets=False,
        log_level=LogLevels(logging.getLevelName(logger.getEffectiveLevel()).lower()),
        # SIGTERM: workers stop accepting and finish the requests in flight, killed after the request timeout.
        workers_kill_timeout=max(1, math.ceil(settings.timeout_s)),
    )


def configure_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


def serve() -> None:
    """Entry point of the container (``serve``), as SageMaker runs it: ``docker run IMAGE serve``."""
    configure_logging()
    settings = ServerSettings.from_environ(os.environ)
    logger.info("serving on port %d with %d worker process(es)", settings.port, settings.workers)
    container_server(settings).serve(target_loader=partial(worker_app, settings), wrap_loader=False)


if __name__ == "__main__":
    serve()
