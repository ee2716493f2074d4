"""The sagemaker-runtime wire protocol (rest-json, as botocore's service model describes it), and the local
fault routes beside it.

``POST /endpoints/{EndpointName}/invocations`` answers the container's body with ``Content-Type`` and
``x-Amzn-Invoked-Production-Variant``; ``POST /endpoints/{EndpointName}/async-invocations`` answers 202 and
the output and failure locations; ``POST /`` with ``X-Amz-Target`` is the control plane's ``DescribeEndpoint``
(:mod:`.control_plane`). ``PUT /_local/faults/{endpoint}`` sets a :class:`FaultSpec` (JSON body),
``GET /_local/faults`` reads them back with the sync calls in flight and, per endpoint with a ``containers``
fault, its pool (``containers``, ``idle``, ``provisioned``, ``cold_starts``, ``throttles``);
``DELETE /_local/faults`` clears them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any, Final

from local.sagemaker_runtime.control_plane import control_plane_call
from local.sagemaker_runtime.errors import Reply, error_answer
from local.sagemaker_runtime.faults import FaultSpec
from serving.server import read_body, write_answer
from serving.service import CUSTOM_ATTRIBUTES_HEADER, Answer

if TYPE_CHECKING:
    from local.sagemaker_runtime.async_worker import AsyncEndpoints
    from local.sagemaker_runtime.faults import FaultInjector
    from local.sagemaker_runtime.sync_endpoints import SyncEndpoints

INVOKE_PATH: Final[re.Pattern[str]] = re.compile(r"^/endpoints/([^/]+)/invocations$")
ASYNC_INVOKE_PATH: Final[re.Pattern[str]] = re.compile(r"^/endpoints/([^/]+)/async-invocations$")
FAULT_PATH: Final[re.Pattern[str]] = re.compile(r"^/_local/faults/([^/]+)$")
FAULTS_PATH: Final[str] = "/_local/faults"
NOT_FOUND: Final[Answer] = Answer(404, b'{"error":"not found"}')


def runtime_handler(
    sync: SyncEndpoints, asynchronous: AsyncEndpoints, faults: FaultInjector
) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving these endpoints and faults."""

    class RuntimeHandler(BaseHTTPRequestHandler):
        # Without TCP_NODELAY, botocore's keep-alive connection waits ~40 ms (delayed ACK) on every answer.
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            async_match = ASYNC_INVOKE_PATH.match(self.path)
            if async_match is not None:
                # InvokeEndpointAsync sends no body; read whatever was sent so the connection stays usable.
                length = self.headers.get("Content-Length", "0")
                if length.isdigit() and int(length):
                    self.rfile.read(int(length))
                self._reply(asynchronous.submit(async_match.group(1), self.headers, sync.endpoints))
                return
            match = INVOKE_PATH.match(self.path)
            body = read_body(self)
            if body is None:
                return
            target = self.headers.get("X-Amz-Target")
            if self.path == "/" and target is not None:
                endpoints = [*sync.endpoints, *asynchronous.specs]
                self._reply(control_plane_call(target, body, endpoints, faults))
                return
            if match is None:
                answer, headers = error_answer("ValidationError", f"Unknown operation {self.path}")
                write_answer(self, answer, headers)
                return
            self._reply(sync.invoke(match.group(1), body, self.headers.get(CUSTOM_ATTRIBUTES_HEADER)))

        def _reply(self, result: Reply | None) -> None:
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
                write_answer(self, NOT_FOUND)
                return
            try:
                fault = FaultSpec.from_json(json.loads(body))
            except (ValueError, TypeError) as error:
                write_answer(self, Answer(400, json.dumps({"error": str(error)}).encode()))
                return
            faults.set(match.group(1), fault)
            write_answer(self, Answer(200, json.dumps(asdict(fault)).encode()))

        def do_GET(self) -> None:
            if self.path != FAULTS_PATH:
                write_answer(self, NOT_FOUND)
                return
            specs = {name: asdict(spec) for name, spec in faults.specs().items()}
            in_flight = {name: sync.in_flight(name) for name in sync.endpoints}
            containers = faults.container_stats()
            document = {"faults": specs, "in_flight": in_flight, "containers": containers}
            write_answer(self, Answer(200, json.dumps(document).encode()))

        def do_DELETE(self) -> None:
            if self.path != FAULTS_PATH:
                write_answer(self, NOT_FOUND)
                return
            faults.clear()
            write_answer(self, Answer(204, b""))

        def log_message(self, format: str, *args: Any) -> None:
            return

    return RuntimeHandler
