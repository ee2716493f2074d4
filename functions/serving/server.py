"""The model server a SageMaker container runs: ``serve`` listens on port 8080 and answers ``GET /ping``
and ``POST /invocations`` for the model under ``/opt/ml/model`` (``model.onnx`` + ``signature.json``).

The model loads on a background thread so ``/ping`` can say 503 until it is ready, as SageMaker expects.
Every response carries ``Content-Length`` (async endpoints require it).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from functions.common.config import parse_model_config
from functions.serving.service import Answer, InvocationService

logger = logging.getLogger("serving")
MODEL_FILE = "model.onnx"
SIGNATURE_FILE = "signature.json"
# SageMaker sends at most a 6 MB body to /invocations on real-time endpoints; async input can be larger.
MAX_REQUEST_BYTES = 1024 * 1024 * 1024


def load_model(model_dir: Path, intra_op_threads: int = 0) -> Any:
    from functions.serving.onnx_model import OnnxModel  # onnxruntime is heavy: import once the port is open

    signature_path = model_dir / SIGNATURE_FILE
    config = parse_model_config(json.loads(signature_path.read_text(encoding="utf-8")), str(signature_path))
    return OnnxModel(config, model_dir / MODEL_FILE, intra_op_threads=intra_op_threads)


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

        def do_GET(self) -> None:
            if self.path == "/ping":
                write_answer(self, service.ping())
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


def serve(argv: list[str] | None = None) -> None:
    """Entry point of the container (``serve``), as SageMaker runs it: ``docker run IMAGE serve``."""
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    port = int(os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080"))
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    threads = int(os.environ.get("SERVING_INTRA_OP_THREADS", "0"))
    service = InvocationService()
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(service))  # noqa: S104 - the container must listen on all interfaces
    server.daemon_threads = True

    def load() -> None:
        try:
            service.model = load_model(model_dir, threads)
            logger.info("model loaded from %s", model_dir)
        except Exception:
            logger.exception("model failed to load from %s; /ping stays unhealthy", model_dir)

    threading.Thread(target=load, name="model-loader", daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    logger.info("serving on port %d", port)
    server.serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1:])
