"""The container logs the custom attributes SageMaker passes it (the router's correlation id) with each
invocation's answer, so the endpoint's log group can be searched for one API request."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest

from functions.adapters.onnx_model import OnnxModel
from functions.config.models import load_models_config
from local.stack import REPO_ROOT
from serving.service import LOGGED_ATTRIBUTES_CHARS, InvocationService
from serving.wsgi import ContainerApp

VALID = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}


@pytest.fixture(scope="module")
def container() -> ContainerApp:
    iris = load_models_config().model("iris")
    assert iris is not None
    return ContainerApp(InvocationService(OnnxModel(iris, REPO_ROOT / iris.artifact)), 6 * 1024 * 1024)


def invoke(app: ContainerApp, body: bytes, environ: dict[str, str], caplog: pytest.LogCaptureFixture) -> list[str]:
    """The status line and the service's log lines for one POST /invocations."""
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answered["status"] = status

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="serving.service"):
        b"".join(app({"REQUEST_METHOD": "POST", "PATH_INFO": "/invocations", "CONTENT_LENGTH": str(len(body)),
                      "wsgi.input": io.BytesIO(body), **environ}, start_response))  # type: ignore[arg-type]  # fmt: skip
    return [answered["status"], *(r.getMessage() for r in caplog.records if r.name == "serving.service")]


@pytest.mark.parametrize(("body", "status"), [(json.dumps(VALID).encode(), 200), (b"{", 400)])
def test_each_invocation_is_logged_with_its_custom_attributes(
    container: ContainerApp, caplog: pytest.LogCaptureFixture, body: bytes, status: int
) -> None:
    environ = {"CONTENT_TYPE": "application/json", "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": "correlation_id=req-9"}
    answered, *lines = invoke(container, body, environ, caplog)
    assert answered.startswith(str(status))
    [line] = [line for line in lines if "custom attributes" in line]
    assert line.startswith(f"invocation answered {status} in ")
    assert line.endswith("custom attributes 'correlation_id=req-9'")


def test_an_invocation_without_custom_attributes_adds_no_line(
    container: ContainerApp, caplog: pytest.LogCaptureFixture
) -> None:
    _, *lines = invoke(container, json.dumps(VALID).encode(), {"CONTENT_TYPE": "application/json"}, caplog)
    assert lines == []


def test_hostile_attributes_are_logged_quoted_and_clipped(
    container: ContainerApp, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = "a\nFAKE LOG LINE " + "x" * 5000
    environ = {"CONTENT_TYPE": "application/json", "HTTP_X_AMZN_SAGEMAKER_CUSTOM_ATTRIBUTES": hostile}
    _, line = invoke(container, json.dumps(VALID).encode(), environ, caplog)
    assert "\n" not in line
    assert repr(hostile[:LOGGED_ATTRIBUTES_CHARS]) in line
