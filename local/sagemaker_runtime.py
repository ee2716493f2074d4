"""A local SageMaker runtime: the real sagemaker-runtime REST protocol on 127.0.0.1, so unmodified boto3
(``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``) reaches real ONNX models through the production serving code.

Protocol (rest-json, as botocore's service model describes it):
``POST /endpoints/{EndpointName}/invocations`` answers the container's body with ``Content-Type`` and
``x-Amzn-Invoked-Production-Variant``; an error is a status, header ``x-amzn-ErrorType: <Code>`` and
body ``{"message": ...}`` (plus the ModelError fields), from which boto3 raises the modelled exception.

Faults can be set per endpoint while it runs, from code (:meth:`LocalSageMakerRuntime.set_fault`) or
over HTTP (``PUT /_local/faults/{endpoint}`` with a :class:`FaultSpec` JSON body, ``DELETE /_local/faults``).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final

from functions.serving.server import read_body, write_answer
from functions.serving.service import Answer

if TYPE_CHECKING:
    from functions.serving.service import InvocationService

ACCOUNT_ID: Final[str] = "123456789012"
REGION: Final[str] = "us-east-1"
INVOKE_PATH: Final[re.Pattern[str]] = re.compile(r"^/endpoints/([^/]+)/invocations$")
FAULT_PATH: Final[re.Pattern[str]] = re.compile(r"^/_local/faults/([^/]+)$")
# How SageMaker answers each error (design.md): status code, and whether its message is null.
ERROR_STATUS: Final[dict[str, int]] = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "InternalFailure": 500,
    "ServiceUnavailable": 503,
    "InternalDependencyException": 530,
}
# Not an AWS error code: the runtime closes the connection without answering (a network failure).
DROP_CONNECTION: Final[str] = "DropConnection"


class FaultSpecError(ValueError):
    """A fault spec names an unknown error or an impossible rate."""


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What an endpoint does wrong: fail ``error_rate`` of calls with ``error``; delay every call by ``latency_ms``.

    ``model_status`` is the container status a ``ModelError`` reports as ``OriginalStatusCode``.
    """

    error: str | None = None
    error_rate: float = 1.0
    latency_ms: float = 0.0
    model_status: int = 500

    def __post_init__(self) -> None:
        if self.error is not None and self.error not in ERROR_STATUS and self.error != DROP_CONNECTION:
            known = ", ".join([*ERROR_STATUS, DROP_CONNECTION])
            raise FaultSpecError(f"unknown error {self.error!r} (known: {known})")
        if not 0.0 <= self.error_rate <= 1.0:
            raise FaultSpecError(f"error_rate {self.error_rate} must lie in [0, 1]")
        if self.latency_ms < 0:
            raise FaultSpecError(f"latency_ms {self.latency_ms} must not be negative")

    @classmethod
    def from_json(cls, document: Any) -> FaultSpec:
        if not isinstance(document, dict):
            raise FaultSpecError("a fault spec is a JSON object")
        unknown = set(document) - {"error", "error_rate", "latency_ms", "model_status"}
        if unknown:
            raise FaultSpecError(f"unknown fault field {sorted(unknown)[0]!r}")
        return cls(**document)


def error_answer(code: str, message: str | None, **fields: Any) -> tuple[Answer, dict[str, str]]:
    body = json.dumps({"message": message, **fields}).encode()
    return Answer(ERROR_STATUS[code], body), {
        "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"
    }


class LocalSageMakerRuntime:
    """Serves ``endpoints`` (name → serving code) on ``host:port``; port 0 picks a free one.

    Example:
        >>> runtime = LocalSageMakerRuntime({"iris": service}).start()
        >>> os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime.url
    """

    def __init__(self, endpoints: dict[str, InvocationService], host: str = "127.0.0.1", port: int = 0) -> None:
        self.endpoints = endpoints
        self._faults: dict[str, FaultSpec] = {}
        self._random = random.Random()
        self._server = ThreadingHTTPServer((host, port), self._make_handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalSageMakerRuntime:
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-sagemaker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_fault(self, endpoint: str, fault: FaultSpec) -> None:
        self._faults[endpoint] = fault

    def clear_faults(self) -> None:
        self._faults.clear()

    def seed(self, value: int) -> None:
        self._random.seed(value)

    def invoke(self, endpoint: str, body: bytes) -> tuple[Answer, dict[str, str]] | None:
        """One invocation as SageMaker answers it; None means: drop the connection."""
        service = self.endpoints.get(endpoint)
        if service is None:
            return error_answer("ValidationError", f"Endpoint {endpoint} of account {ACCOUNT_ID} not found.")
        fault = self._faults.get(endpoint)
        if fault is not None:
            if fault.latency_ms:
                time.sleep(fault.latency_ms / 1000)
            if fault.error is not None and self._random.random() < fault.error_rate:
                return self._injected_error(endpoint, fault)
        answer = service.invoke(body)
        if answer.status >= 400:
            return self._model_error(endpoint, answer.status, answer.body.decode("utf-8", "replace"))
        return answer, {"x-Amzn-Invoked-Production-Variant": "AllTraffic"}

    def _injected_error(self, endpoint: str, fault: FaultSpec) -> tuple[Answer, dict[str, str]] | None:
        if fault.error == DROP_CONNECTION:
            return None
        if fault.error == "ModelError":
            return self._model_error(endpoint, fault.model_status, json.dumps({"error": "injected model failure"}))
        if fault.error == "ThrottlingException":
            return error_answer("ThrottlingException", None)  # SageMaker sends a null message here
        messages = {
            "ModelNotReadyException": f"Model for endpoint {endpoint} is not ready yet. Please retry after some time.",
            "ValidationError": f"Endpoint {endpoint} rejected the request.",
        }
        code = fault.error or "InternalFailure"
        return error_answer(code, messages.get(code, f"{code} (injected)"))

    def _model_error(self, endpoint: str, status: int, message: str) -> tuple[Answer, dict[str, str]]:
        kind = "client" if status < 500 else "server"
        log_stream = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:/aws/sagemaker/Endpoints/{endpoint}"
        return error_answer(
            "ModelError",
            f'Received {kind} error ({status}) from primary with message "{message}". '
            f"See {log_stream} for more information.",
            OriginalStatusCode=status,
            OriginalMessage=message,
            LogStreamArn=log_stream,
        )

    def _make_handler(self) -> type[BaseHTTPRequestHandler]:
        runtime = self

        class RuntimeHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                match = INVOKE_PATH.match(self.path)
                body = read_body(self)
                if body is None:
                    return
                if match is None:
                    answer, headers = error_answer("ValidationError", f"Unknown operation {self.path}")
                    write_answer(self, answer, headers)
                    return
                result = runtime.invoke(match.group(1), body)
                if result is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                answer, headers = result
                write_answer(self, answer, {"x-amzn-RequestId": str(uuid.uuid4()), **headers})

            def do_PUT(self) -> None:
                match = FAULT_PATH.match(self.path)
                body = read_body(self)
                if body is None:
                    return
                if match is None:
                    write_answer(self, Answer(404, b'{"error":"not found"}'))
                    return
                try:
                    fault = FaultSpec.from_json(json.loads(body))
                except (ValueError, TypeError) as error:
                    write_answer(self, Answer(400, json.dumps({"error": str(error)}).encode()))
                    return
                runtime.set_fault(match.group(1), fault)
                write_answer(self, Answer(200, json.dumps(asdict(fault)).encode()))

            def do_DELETE(self) -> None:
                if self.path != "/_local/faults":
                    write_answer(self, Answer(404, b'{"error":"not found"}'))
                    return
                runtime.clear_faults()
                write_answer(self, Answer(204, b""))

            def log_message(self, format: str, *args: Any) -> None:
                return

        return RuntimeHandler
