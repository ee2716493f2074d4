"""Hostile requests against the router handler in-process, as API Gateway (or a direct invoke) would hand
them over: every one answered with a JSON 4xx or, for what nothing else catches, a JSON 500; never an
exception out of the handler, never an answer that echoes the request unbounded."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.limits import LAMBDA_MAX_BODY_BYTES, LAMBDA_MAX_INVOKE_PAYLOAD_BYTES
from functions.config.router_settings import RouterSettings
from functions.domain.body_guard import MAX_NESTING_DEPTH
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from tests.helpers.events import HandlerAnswer, answer_of, load_event

ROOT = Path(__file__).resolve().parents[2]
# What a SigV4-signed request through API Gateway carries besides its body (sizes as a real client sends).
SIGNED_HEADERS = {
    "Content-Type": "application/json",
    "Authorization": "AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE12/20240611/eu-west-1/execute-api/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=" + "f" * 64,
    "X-Amz-Date": "20240611T120000Z",
    "X-Amz-Security-Token": "I" * 1200,
    "X-Amz-Content-Sha256": "e" * 64,
    "User-Agent": "python-requests/2.32.3 aws-sigv4",
    "X-Forwarded-For": "203.0.113.7, 198.51.100.1",
    "X-Amzn-Trace-Id": "Root=1-66684a10-0123456789abcdef01234567",
}


def event_for(body: bytes, headers: dict[str, str] | None = None, model: str = "iris") -> dict[str, Any]:
    event = build_rest_event("POST", f"/v2/models/{model}/infer", headers or {"Content-Type": "application/json"}, body)
    assert event is not None
    return event


def logged(app: RouterApp, call: Any) -> tuple[Any, str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(app.logger.registered_formatter)
    app.logger.addHandler(handler)
    try:
        return call(), stream.getvalue()
    finally:
        app.logger.removeHandler(handler)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
@pytest.mark.parametrize("where", ["body", "data", "parameters", "id"])
def test_deep_nesting_anywhere_is_a_400_naming_the_limit(call_router: Any, opener: str, where: str) -> None:
    closer = "]" if opener == "[" else "}"
    deep = opener * 10_000 + "1" + closer * 10_000
    template = {
        "body": "@",
        "data": '{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": @}]}',
        "parameters": '{"parameters": {"p": @}, "inputs": []}',
        "id": '{"id": @, "inputs": []}',
    }[where]
    answer = call_router(event_for(template.replace("@", deep).encode()))
    assert answer.status == 400
    assert f"at most {MAX_NESTING_DEPTH}" in answer.body["error"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b'{"inputs": [], "inputs": []}', "repeats the key 'inputs'"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ('{"inputs": []}'.encode("utf-16"), "UTF-16 or UTF-32"),
        (b'{"id": "\\udfff", "inputs": []}', "lone surrogate"),
    ],
)
def test_ambiguous_bodies_are_a_400_naming_the_problem(call_router: Any, body: bytes, named: str) -> None:
    # octet-stream: the local API base64-encodes the body, as API Gateway does for a binary media type.
    answer = call_router(event_for(body, {"Content-Type": "application/octet-stream"}))
    assert answer.status == 400
    assert named in answer.body["error"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"isBase64Encoded": True, "body": "not base64!"}, "marked base64 but is not base64"),
        ({"isBase64Encoded": True, "body": "e30"}, "marked base64 but is not base64"),  # padding missing
        ({"isBase64Encoded": True, "body": "ée30="}, "marked base64 but is not base64"),
        ({"body": {"inputs": []}}, "body must be a string, got dict"),
        ({"body": 12}, "body must be a string, got int"),
        ({"body": '{"id": "\ud800", "inputs": []}'}, "lone surrogate at character 8"),
    ],
)
def test_direct_invoke_body_edges_are_a_400_not_an_exception(
    call_router: Any, change: dict[str, Any], named: str
) -> None:
    event = {**load_event("apigw_infer_valid"), **change}
    answer = call_router(event)
    assert answer.status == 400
    assert named in answer.body["error"]


def test_an_error_body_stays_small_whatever_the_request_echoes(router_app: RouterApp, call_router: Any) -> None:
    huge = "D" * 4_400_000
    body = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": huge, "data": [1, 2, 3, 4]}]})
    event = event_for(body.encode())
    answer, log = logged(router_app, lambda: call_router(event))
    # Over iris's 1 MB sync limit and no async path here: a 413 that names sizes, not the body.
    assert answer.status == 413
    small = event_for(body.replace(huge, huge[:900_000]).encode())
    answer, log = logged(router_app, lambda: call_router(small))
    assert answer.status == 400
    assert len(json.dumps(answer.body)) < 1024
    assert "(900000 characters)" in answer.body["error"]
    assert len(log) < 4096


def test_an_unknown_path_of_any_length_is_a_small_404(call_router: Any) -> None:
    event = load_event("apigw_unknown_path")
    event["path"] = "/v2/" + "p" * 100_000
    answer = call_router(event)
    assert answer.status == 404
    assert len(answer.body["error"]) < 400


def test_a_malformed_direct_invoke_is_a_json_500_logged_and_counted(
    router_app: RouterApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    event = {**load_event("apigw_infer_valid"), "headers": ["Prefer", "x" * 100_000]}  # not a mapping
    result, log = logged(router_app, lambda: router_app(event, LocalLambdaContext()))
    answer = answer_of(result)
    assert answer.status == 500
    assert answer.headers["Content-Type"] == "application/json"
    assert "internal error" in answer.body["error"]
    line = json.loads(log.splitlines()[-1])
    assert line["message"] == "unhandled error, answered 500"
    assert line["type"] == "ValueError"
    assert len(log) < 2048
    metrics = [json.loads(out) for out in capsys.readouterr().out.splitlines() if '"_aws"' in out]
    assert any("UnhandledErrors" in metric for metric in metrics)


def test_a_non_mapping_event_is_a_json_500(router_app: RouterApp) -> None:
    answer = answer_of(router_app(["not", "an", "event"], LocalLambdaContext()))  # type: ignore[arg-type]
    assert answer.status == 500


@pytest.fixture
def lambda_routed_app(tmp_path: Path, sagemaker_backend: SageMakerBackend) -> RouterApp:
    """iris routed in the Lambda, at the router's own body limit."""
    config = json.loads((ROOT / "functions" / "models.json").read_text())
    model = config["models"][0]
    model["route"] = {"sync": "lambda"}
    model["limits"]["max_body_bytes"] = LAMBDA_MAX_BODY_BYTES
    path = tmp_path / "models.json"
    path.write_text(json.dumps(config))
    return create_app(RouterSettings(models_config_path=str(path)), None, RouterClients(sagemaker_backend))


def numeric_body(size: int) -> bytes:
    head, tail = b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [', b"0.5]}]}"
    body = head + b"0.5, " * ((size - len(head) - len(tail)) // 5) + tail
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("size", [LAMBDA_MAX_BODY_BYTES, LAMBDA_MAX_BODY_BYTES + 1])
def test_the_body_limit_fits_a_realistic_signed_event_and_answers_413_past_it(
    lambda_routed_app: RouterApp, size: int
) -> None:
    event = event_for(numeric_body(size), SIGNED_HEADERS)
    # What Lambda counts: the whole event as JSON. At and just past the limit it fits, with room to spare.
    assert len(json.dumps(event).encode()) < LAMBDA_MAX_INVOKE_PAYLOAD_BYTES - 200_000
    answer: HandlerAnswer = answer_of(lambda_routed_app(event, LocalLambdaContext()))
    if size > LAMBDA_MAX_BODY_BYTES:
        assert answer.status == 413
        assert f"accepts at most {LAMBDA_MAX_BODY_BYTES}" in answer.body["error"]
    else:
        assert answer.status == 400  # more numbers than iris takes: refused before parsing, not for size
        assert "the model's inputs take at most" in answer.body["error"]
