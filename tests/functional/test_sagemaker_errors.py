"""Every SageMaker runtime error, injected in the local runtime and reaching the router through real boto3,
answers with the status docs/architecture.md documents ('SageMaker runtime errors')."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import boto3
import pytest
from botocore.config import Config

from functions.adapters.sagemaker import SageMakerBackend, create_sagemaker_runtime_client, split_timeout_ms
from functions.config.router_settings import RouterSettings
from functions.domain.errors import EndpointUnavailableError
from functions.handlers.router.app import RouterClients, create_app
from local.api_gateway import LocalLambdaContext
from local.sagemaker_runtime import DROP_CONNECTION, FaultSpec, LocalSageMakerRuntime
from tests.helpers.events import answer_of, load_event

# (fault, model status for ModelError, expected status, Retry-After expected, message fragment)
MAPPINGS = [
    ("ValidationError", 500, 502, False, "rejected the request (ValidationError)"),
    ("ModelError", 400, 400, False, "failed (400)"),
    ("ModelError", 404, 422, False, "failed (404)"),
    ("ModelError", 500, 502, False, "failed (500)"),
    ("ModelNotReadyException", 500, 503, True, "unavailable (ModelNotReadyException)"),
    ("ThrottlingException", 500, 503, True, "unavailable (ThrottlingException)"),
    ("InternalFailure", 500, 503, True, "unavailable (InternalFailure)"),
    ("ServiceUnavailable", 500, 503, True, "unavailable (ServiceUnavailable)"),
    ("InternalDependencyException", 500, 503, True, "unavailable (InternalDependencyException)"),
    (DROP_CONNECTION, 500, 503, True, "could not be reached"),
]


@pytest.mark.parametrize(("error", "model_status", "status", "retry_after", "message"), MAPPINGS,
                         ids=[f"{m[0]}-{m[1]}" for m in MAPPINGS])  # fmt: skip
def test_sagemaker_error_maps_to_documented_status(
    runtime: LocalSageMakerRuntime,
    call_router: Any,
    error: str,
    model_status: int,
    status: int,
    retry_after: bool,
    message: str,
) -> None:
    runtime.set_fault("iris", FaultSpec(error=error, model_status=model_status))
    answer = call_router(load_event("apigw_infer_valid"))
    assert answer.status == status
    assert message in answer.body["error"]
    assert ("Retry-After" in answer.headers) is retry_after


def test_model_error_message_is_the_models_own(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="ModelError", model_status=400))
    assert "injected model failure" in call_router(load_event("apigw_infer_valid")).body["error"]


def test_read_timeout_past_the_deadline_is_504(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(latency_ms=1500))
    answer = call_router(load_event("apigw_infer_valid"), timeout_ms=1000)
    assert answer.status == 504
    assert "did not answer within 500 ms" in answer.body["error"]


def test_no_time_left_is_504_without_calling(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="InternalFailure"))
    answer = call_router(load_event("apigw_infer_valid"), timeout_ms=200)
    assert answer.status == 504
    assert "no time left to call the model" in answer.body["error"]


def test_an_endpoint_not_deployed_yet_is_503_with_a_long_retry_after(
    runtime: LocalSageMakerRuntime, sagemaker_backend: SageMakerBackend
) -> None:
    # The platform (the router that knows the model) deploys before the model's stack creates its endpoint.
    router = create_app(RouterSettings(endpoint_name_prefix="missing-"), None, RouterClients(sagemaker_backend))
    answer = answer_of(router(load_event("apigw_infer_valid"), LocalLambdaContext()))
    assert answer.status == 503
    assert answer.headers["Retry-After"] == "30"
    assert answer.body["error"] == (
        "endpoint 'missing-iris' does not exist: the model's stack is not deployed yet, or was removed"
    )


def test_another_validation_error_is_502_naming_it(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="ValidationError"))
    answer = call_router(load_event("apigw_infer_valid"))
    assert answer.status == 502
    assert "rejected the request (ValidationError)" in answer.body["error"]


def test_partial_error_rate_fails_only_some_calls(runtime: LocalSageMakerRuntime, call_router: Any) -> None:
    runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=0.5))
    statuses = {call_router(load_event("apigw_infer_valid")).status for _ in range(20)}
    assert statuses == {200, 503}


class _MisbehavingEndpoint(http.server.BaseHTTPRequestHandler):
    """What sits between the router and SageMaker can fail without SageMaker's error header."""

    answers: ClassVar[dict[str, tuple[int, bytes, int]]] = {
        "bad-gateway": (502, b"<html>502 Bad Gateway</html>", 0),
        "gateway-timeout": (504, b"<html>504 Gateway Time-out</html>", 0),
        "unavailable": (503, b"", 0),
        "too-many": (429, b"slow down", 0),
        # Content-Length promises 200 bytes more than arrive before the connection closes.
        "cut-short": (200, b'{"outputs": [', 200),
    }

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        status, body, missing = self.answers[self.path.split("/")[2]]
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if status != 200 else "application/json")
        self.send_header("Content-Length", str(len(body) + missing))
        if missing:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def misbehaving_backend() -> Iterator[SageMakerBackend]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MisbehavingEndpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def client(timeout_ms: int) -> Any:
        connect_ms, read_ms = split_timeout_ms(timeout_ms)
        return boto3.client(
            "sagemaker-runtime",
            endpoint_url=f"http://127.0.0.1:{server.server_port}",
            config=Config(
                connect_timeout=connect_ms / 1000,
                read_timeout=read_ms / 1000,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )

    try:
        yield SageMakerBackend(client)
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("bad-gateway", "bad-gateway"),
        ("gateway-timeout", "gateway-timeout"),
        ("unavailable", "service-unavailable"),
        ("too-many", "throttled"),
        ("cut-short", "connection-error"),
    ],
)
def test_an_answer_without_sagemakers_error_header_is_transient(
    misbehaving_backend: SageMakerBackend, endpoint: str, reason: str
) -> None:
    with pytest.raises(EndpointUnavailableError) as raised:
        misbehaving_backend.invoke(endpoint, b"{}", attempt_ms=lambda: 2000)
    assert raised.value.reason == reason
    assert endpoint in str(raised.value)


@pytest.mark.parametrize("timeout_ms", [50, 300, 1000, 4000, 20_000, 60_000])
def test_connect_and_read_timeouts_share_the_attempts_budget(timeout_ms: int) -> None:
    connect_ms, read_ms = split_timeout_ms(timeout_ms)
    assert connect_ms + read_ms == timeout_ms
    assert 0 < connect_ms <= min(1000, timeout_ms // 4)
    config = create_sagemaker_runtime_client(timeout_ms).meta.config
    assert config.connect_timeout + config.read_timeout == pytest.approx(timeout_ms / 1000)
