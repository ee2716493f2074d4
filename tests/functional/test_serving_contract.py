"""The model server as SageMaker runs it: the ``serve`` entry point as a process, the model directory the
packer's model.tar.gz unpacked as SageMaker unpacks it (/opt/ml/model with model.onnx + signature.json)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest

from local.stack import REPO_ROOT
from tests.helpers.sagemaker_layout import unpack_model

IRIS_REQUEST = {
    "inputs": [
        {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}
    ]
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(url: str, body: bytes | None = None) -> tuple[int, Message, bytes]:
    """Status, headers (names case-insensitive, as HTTP's are) and body of one request."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_model(tmp_path_factory.mktemp("opt_ml") / "model", "iris")


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SM_MODEL_DIR": str(model_dir)}
    process = subprocess.Popen([sys.executable, "-m", "serving.server", "serve"], env=env, cwd=REPO_ROOT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if request(f"{url}/ping")[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("serve did not become healthy within 30 s")
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_ping_is_healthy_once_the_model_is_loaded(server: str) -> None:
    status, headers, body = request(f"{server}/ping")
    assert (status, json.loads(body)) == (200, {"status": "healthy"})
    assert headers["Content-Length"] == str(len(body))


def test_invocations_answers_oip_with_content_length(server: str) -> None:
    status, headers, body = request(f"{server}/invocations", json.dumps(IRIS_REQUEST).encode())
    assert status == 200
    assert headers["Content-Length"] == str(len(body))
    answer = json.loads(body)
    assert answer["outputs"][0] == {"name": "label", "datatype": "INT64", "shape": [2], "data": [0, 2]}


def test_invocations_bad_input_is_400_naming_the_input(server: str) -> None:
    status, _, body = request(
        f"{server}/invocations", b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT8","data":[1,2,3,4]}]}'
    )
    assert status == 400
    assert "input 'input': datatype INT8" in json.loads(body)["error"]


def test_unknown_path_is_404(server: str) -> None:
    assert request(f"{server}/predict", b"{}")[0] == 404


def test_ping_unhealthy_while_the_model_cannot_load(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SM_MODEL_DIR": str(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "serving.server", "serve"], env=env, cwd=REPO_ROOT,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                status, _, body = request(f"http://127.0.0.1:{port}/ping")
                break
            except OSError:
                time.sleep(0.1)
        assert (status, json.loads(body)) == (503, {"error": "model is loading"})
    finally:
        process.terminate()
        process.wait(timeout=10)
