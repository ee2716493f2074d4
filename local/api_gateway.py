"""A local API Gateway (REST, v1 proxy integration) on 127.0.0.1: each HTTP request becomes the event
API Gateway would send, the Lambda handler runs in-process, and its response is written back.

Resources come from ``functions.config.api_routes.ROUTES``; any other path goes to the ``/{proxy+}`` resource,
as the deployed API does, so the router answers it with a clear 404. A path that matches a resource
with another method gets what the deployed API answers: API Gateway's MISSING_AUTHENTICATION_TOKEN (403), which
the API maps to ``{"error": "Missing Authentication Token"}`` (its DEFAULT_4XX gateway response,
``infra/constructs/api.py``). A body over API Gateway's 10 MB is its REQUEST_TOO_LARGE, 413, mapped the same way.
Bodies are read by ``Content-Length`` or ``Transfer-Encoding: chunked`` (:mod:`local.http_body`).

One Lambda environment handles one request at a time; the server serialises calls to the handler
the same way (``sam local start-api`` with a warm container).

Callers are told apart as the dev stage tells them apart: by their ``x-api-key``, which becomes the event's
``requestContext.identity.apiKey`` and ``apiKeyId``. No key checks anything (any value is a caller of its own),
and a request without one is the one anonymous local caller.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from functions.config.api_routes import ROUTES, ApiRoute
from functions.config.limits import API_GATEWAY_MAX_BODY_BYTES
from local.account import ACCOUNT_ID, REGION
from local.http_body import BodyRefusedError, read_request_body

STAGE: Final[str] = "local"
API_ID: Final[str] = "localapi01"
PROXY_RESOURCE: Final[str] = "/{proxy+}"
BINARY_MEDIA_TYPES: Final[tuple[str, ...]] = (
    "application/octet-stream",
    "application/vnd.sagemaker-triton.binary+json",
)


def _template_regex(resource: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(resource)) + "$")


RESOURCE_PATTERNS: Final[tuple[tuple[ApiRoute, re.Pattern[str]], ...]] = tuple(
    (r, _template_regex(r.resource)) for r in ROUTES
)


def match_resource(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The resource template and path parameters for a request; None when a resource matches but not its method."""
    path_matched = False
    for route, pattern in RESOURCE_PATTERNS:
        found = pattern.match(path)
        if found is None:
            continue
        if route.method == method:
            return route.resource, found.groupdict()
        path_matched = True
    if path_matched:
        return None
    return PROXY_RESOURCE, {"proxy": path.lstrip("/")}


def gateway_error_body(message: str) -> bytes:
    """An API Gateway error as the deployed API's gateway responses write it: ``{"error": $context.error.
    messageString}``, where ``messageString`` is the message as a quoted JSON string."""
    return ('{"error": ' + json.dumps(message) + "}").encode()


def api_key_identity(headers: dict[str, str]) -> dict[str, str]:
    """The ``apiKey`` and ``apiKeyId`` API Gateway adds for a request's ``x-api-key``; none without one.

    The id stands in for the key's API Gateway id: derived from the key, so the key itself (a secret) is not
    what the router records as a job's owner.
    """
    key = next((value for name, value in headers.items() if name.lower() == "x-api-key" and value), None)
    if key is None:
        return {}
    return {"apiKey": key, "apiKeyId": "local-" + hashlib.sha256(key.encode()).hexdigest()[:16]}


def build_rest_event(
    method: str, raw_path: str, headers: dict[str, str], body: bytes, *, source_ip: str = "127.0.0.1"
) -> dict[str, Any] | None:
    """The API Gateway REST proxy event for one request (None: no method on the matched resource)."""
    split = urlsplit(raw_path)
    path = split.path or "/"
    matched = match_resource(method, path)
    if matched is None:
        return None
    resource, path_parameters = matched
    query = parse_qsl(split.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in query:
        multi_query.setdefault(key, []).append(value)
    content_type = headers.get("Content-Type", headers.get("content-type", ""))
    # The deployed API's binary media types (infra/constructs/api.py) arrive base64, as do bodies not UTF-8.
    is_text = not body or not content_type.split(";")[0].strip().lower().startswith(BINARY_MEDIA_TYPES)
    try:
        text_body = body.decode("utf-8") if is_text else None
    except UnicodeDecodeError:
        text_body = None
    now = datetime.now(UTC)
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": dict(headers) or None,
        "multiValueHeaders": {name: [value] for name, value in headers.items()} or None,
        "queryStringParameters": dict(query) or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": headers.get("Host", "127.0.0.1"),
            "domainPrefix": "127",
            "extendedRequestId": request_id[:16],
            "httpMethod": method,
            "identity": {
                "accessKey": None,
                "accountId": None,
                "caller": None,
                "cognitoAuthenticationProvider": None,
                "cognitoAuthenticationType": None,
                "cognitoIdentityId": None,
                "cognitoIdentityPoolId": None,
                "principalOrgId": None,
                "sourceIp": source_ip,
                "user": None,
                "userAgent": headers.get("User-Agent", ""),
                "userArn": None,
                **api_key_identity(headers),
            },
            "path": f"/{STAGE}{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "resourceId": "local",
            "resourcePath": resource,
            "stage": STAGE,
        },
        "body": (text_body if text_body is not None else base64.b64encode(body).decode()) if body else None,
        "isBase64Encoded": bool(body) and text_body is None,
    }


@dataclass
class LocalLambdaContext:
    """What the Lambda runtime passes as ``context``; the deadline starts at construction."""

    function_name: str = "router"
    memory_limit_in_mb: int = 1024
    timeout_ms: int = 28_000
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = "/aws/lambda/router"
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}:live"
        self._deadline = time.monotonic() + self.timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


class LocalApiGateway:
    """Serves ``handler`` on ``host:port`` as API Gateway's REST proxy integration would.

    Example:
        >>> api = LocalApiGateway(lambda_handler, port=3000).start()
    """

    def __init__(
        self, handler: LambdaHandler, host: str = "127.0.0.1", port: int = 3000, timeout_ms: int = 28_000
    ) -> None:
        self.handler = handler
        self.timeout_ms = timeout_ms
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._make_handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalApiGateway:
        threading.Thread(target=self._server.serve_forever, name="local-api", daemon=True).start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def call(self, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self.handler(event, LocalLambdaContext(timeout_ms=self.timeout_ms))

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class ApiHandler(BaseHTTPRequestHandler):
            # Without TCP_NODELAY, a keep-alive client's delayed ACK holds each small answer ~40 ms.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                try:
                    body = read_request_body(self.headers, self.rfile, API_GATEWAY_MAX_BODY_BYTES)
                except BodyRefusedError as refused:
                    # The rest of the body is still unread: the connection cannot carry another request.
                    self.close_connection = True
                    headers = {"Content-Type": "application/json", "Connection": "close"}
                    self._reply(refused.status, headers, gateway_error_body(refused.message))
                    return
                event = build_rest_event(
                    self.command, self.path, dict(self.headers.items()), body, source_ip=self.client_address[0]
                )
                if event is None:
                    self._reply(
                        403,
                        {"Content-Type": "application/json", "x-amzn-ErrorType": "MissingAuthenticationTokenException"},
                        gateway_error_body("Missing Authentication Token"),
                    )
                    return
                result = gateway.call(event)
                payload = result.get("body") or ""
                data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode("utf-8")
                headers = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = ", ".join(str(value) for value in values)
                headers["x-amzn-RequestId"] = event["requestContext"]["requestId"]
                self._reply(int(result.get("statusCode", 502)), headers, data)

            def _reply(self, status: int, headers: dict[str, str], data: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

            def log_message(self, format: str, *args: Any) -> None:
                return

        return ApiHandler
