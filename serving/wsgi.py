"""The container contract as a WSGI application: ``GET /ping``, ``POST /invocations`` and ``GET /_batching``
answered by an :class:`~serving.service.InvocationService`, every response with ``Content-Length`` (async
endpoints require it) and request bodies bounded before they are read (:mod:`serving.request_body`).

Example:
    >>> app = ContainerApp(InvocationService(model), max_body_bytes=4 * 1024 * 1024)
    >>> # served by granian (serving.server), or any WSGI server
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from functions.domain.binary_tensors import HEADER_LENGTH
from serving.request_body import binary_header_length, body_or_refusal
from serving.service import Answer, InvocationService

if TYPE_CHECKING:
    from wsgiref.types import StartResponse

NOT_FOUND = Answer(HTTPStatus.NOT_FOUND, b'{"error":"not found"}')
NOT_IMPLEMENTED = Answer(HTTPStatus.NOT_IMPLEMENTED, b'{"error":"unsupported method"}')


class ContainerApp:
    """Routes a WSGI request to the service; ``max_body_bytes`` bounds ``/invocations`` bodies."""

    def __init__(self, service: InvocationService, max_body_bytes: int) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = self.answer(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), environ)
        headers = [("Content-Type", answer.content_type), ("Content-Length", str(len(answer.body)))]
        if answer.header_length is not None:
            headers.append((HEADER_LENGTH, str(answer.header_length)))
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [answer.body]

    def answer(self, method: str, path: str, environ: dict[str, Any]) -> Answer:
        if method == "GET":
            if path == "/ping":
                return self.service.ping()
            if path == "/_batching":
                return self.service.batching_stats()
            return NOT_FOUND
        if method == "POST":
            if path != "/invocations":
                return NOT_FOUND
            body = body_or_refusal(environ.get("CONTENT_LENGTH"), self.max_body_bytes, environ["wsgi.input"].read)
            if isinstance(body, Answer):
                return body
            length = binary_header_length(
                environ.get("CONTENT_TYPE"), environ.get("HTTP_INFERENCE_HEADER_CONTENT_LENGTH")
            )
            return self.service.invoke(body, length, environ.get("HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES"))
        return NOT_IMPLEMENTED
