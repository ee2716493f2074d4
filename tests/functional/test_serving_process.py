"""``serve`` as SageMaker runs it — a process, its model directory the packer's model.tar.gz unpacked as
/opt/ml/model (via SM_MODEL_DIR) — with dynamic batching on: answers equal the in-process model's, every response has a
Content-Length, concurrent requests share runs, and a request that breaks its run fails alone."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.onnx_model import OnnxModel
from functions.config.models import load_models_config, parse_model_signature
from functions.domain.validation import validate_infer_request
from tests.onnx_graphs import LOOKUP_TENSORS, lookup_model
from tests.sagemaker_layout import unpack_model

REPO_ROOT = Path(__file__).resolve().parents[2]
CONCURRENT = 8
ROUNDS = 20  # stacking depends on thread timing: try a few rounds of concurrent requests before giving up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    port: int, method: str, path: str, body: bytes | None = None, *, length: bool = True
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if length:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        else:
            connection.putrequest(method, path)
            connection.endheaders()
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def lay_out_iris(root: Path) -> Path:
    """The packer's iris model.tar.gz, unpacked where SageMaker unpacks it."""
    return unpack_model(root / "iris" / "opt" / "ml" / "model", "iris")


def lay_out_lookup(root: Path) -> Path:
    """A Gather over a 10-row table: index 99 makes onnxruntime refuse the run it is in. Configured in a model
    config of its own and packed by the packer like any configured model."""
    source = root / "lookup" / "repo"
    source.mkdir(parents=True)
    (source / "lookup.onnx").write_bytes(lookup_model())
    entry = {
        "name": "lookup",
        "version": "1",
        "platform": "onnxruntime_onnx",
        "artifact": "lookup.onnx",
        **LOOKUP_TENSORS,
        "route": {"sync": "serverless", "serverless_endpoint": "lookup", "async_endpoint": None},
        "limits": {"max_body_bytes": 1048576, "max_batch_rows": 1000},
    }
    config = source / "models.json"
    config.write_text(json.dumps({"server": {"name": "test", "version": "1"}, "models": [entry]}))
    models = load_models_config(config)
    return unpack_model(root / "lookup" / "opt" / "ml" / "model", "lookup", models=models, repo_root=source)


def start(model_dir: Path, **environ: str) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
        "SERVING_BATCHING": "on",
        "SERVING_MAX_QUEUE_DELAY_MS": "50",
        "LOG_LEVEL": "WARNING",
        **environ,
    }
    process = subprocess.Popen([sys.executable, "-m", "serving.server", "serve"], env=env, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if call(port, "GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail("serve did not become healthy within 30 s")
            time.sleep(0.1)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return lay_out_iris(tmp_path_factory.mktemp("sagemaker"))


@pytest.fixture(scope="module")
def iris_server(iris_dir: Path) -> Iterator[int]:
    yield from start(iris_dir)


@pytest.fixture(scope="module")
def lookup_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    yield from start(lay_out_lookup(tmp_path_factory.mktemp("sagemaker")))


def iris_body(index: int, rows: int = 1) -> bytes:
    data = [[(index + row) % 7 + 0.3, 3.1, (index * 3 + row) % 6 + 0.2, 1.1] for row in range(rows)]
    return json.dumps(
        {"id": f"r{index}", "inputs": [{"name": "input", "shape": [rows, 4], "datatype": "FP32", "data": data}]}
    ).encode()


def concurrently(port: int, bodies: list[bytes]) -> list[tuple[int, dict[str, str], bytes]]:
    barrier = threading.Barrier(len(bodies))

    def one(body: bytes) -> tuple[int, dict[str, str], bytes]:
        barrier.wait()
        return call(port, "POST", "/invocations", body)

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(one, bodies))


def batching_stats(port: int) -> dict[str, Any]:
    stats: dict[str, Any] = json.loads(call(port, "GET", "/_batching")[2])
    return stats


def test_serve_answers_equal_the_in_process_model(iris_server: int, iris_dir: Path) -> None:
    model = OnnxModel(
        parse_model_signature(json.loads((iris_dir / "signature.json").read_text())), iris_dir / "model.onnx"
    )
    for index, rows in [(0, 1), (1, 3), (2, 17)]:
        body = iris_body(index, rows)
        status, headers, answer = call(iris_server, "POST", "/invocations", body)
        assert status == 200
        assert headers["Content-Length"] == str(len(answer))
        assert json.loads(answer) == json.loads(json.dumps(model.predict(validate_infer_request(model.config, body))))


@pytest.mark.parametrize(
    ("method", "path", "body", "length", "status"),
    [
        ("GET", "/ping", None, True, 200),
        ("GET", "/_batching", None, True, 200),
        (
            "POST",
            "/invocations",
            b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"INT8","data":[1,2,3,4]}]}',
            True,
            400,
        ),
        ("POST", "/invocations", b"not json", True, 400),
        ("POST", "/invocations", None, False, 411),
        ("POST", "/predict", b"{}", True, 404),
        ("GET", "/nowhere", None, True, 404),
        ("PUT", "/invocations", b"{}", True, 501),
    ],
)
def test_serve_every_response_has_content_length(
    iris_server: int, method: str, path: str, body: bytes | None, length: bool, status: int
) -> None:
    got_status, headers, answer = call(iris_server, method, path, body, length=length)
    assert got_status == status
    assert headers["Content-Length"] == str(len(answer))


def test_serve_stacks_concurrent_requests_and_answers_each_its_own(iris_server: int) -> None:
    before = batching_stats(iris_server)
    assert before["enabled"] is True
    expected = {
        index: json.loads(call(iris_server, "POST", "/invocations", iris_body(index))[2]) for index in range(CONCURRENT)
    }
    stacked = False
    for _ in range(ROUNDS):
        answers = concurrently(iris_server, [iris_body(index) for index in range(CONCURRENT)])
        assert [json.loads(body) for _, _, body in answers] == [expected[index] for index in range(CONCURRENT)]
        stats = batching_stats(iris_server)
        stacked = stats["batches"] - before["batches"] < stats["requests"] - before["requests"]
        if stacked:
            break
    assert stacked, f"no two concurrent requests ever shared a run: {stats}"
    assert stats["largest_batch_requests"] > 1


# Bad requests (index 99) among good ones: the more that arrive together, the likelier a bad one shares a run,
# however busy the machine (stacking depends on thread timing).
LOOKUP_INDICES = (1, 99, 2, 3, 4, 99, 5, 6, 7, 99, 8, 9)


def test_serve_request_that_breaks_a_stacked_run_fails_alone(lookup_server: int) -> None:
    bodies = [
        json.dumps({"inputs": [{"name": "index", "shape": [1], "datatype": "INT64", "data": [index]}]}).encode()
        for index in LOOKUP_INDICES
    ]
    for _ in range(ROUNDS * 3):
        answers = concurrently(lookup_server, bodies)
        for index, (status, headers, body) in zip(LOOKUP_INDICES, answers, strict=True):
            if index != 99:
                assert (status, json.loads(body)["outputs"][0]["data"]) == (200, [2.0 * index, 2.0 * index + 1])
                continue
            assert status == 422  # onnxruntime refused the request's values (INVALID_ARGUMENT), not a model failure
            assert "cannot process the request's values" in json.loads(body)["error"]
            assert "out of" in json.loads(body)["error"]
            assert headers["Content-Length"] == str(len(body))
        if batching_stats(lookup_server)["fallbacks"] > 0:
            break
    else:
        pytest.fail("the bad request was never stacked with good ones, so its isolation was not exercised")


def test_serve_with_two_worker_processes_answers(iris_dir: Path) -> None:
    for port in start(iris_dir, SAGEMAKER_MODEL_SERVER_WORKERS="2"):
        answers = concurrently(port, [iris_body(index) for index in range(CONCURRENT)])
        assert [status for status, _, _ in answers] == [200] * CONCURRENT


# Imported at interpreter start (PYTHONPATH): onnxruntime then lists CUDA as available, as onnxruntime-gpu does
# on a host whose CUDA libraries fail to load; the CPU build's session falls back exactly as the GPU build's would.
CUDA_LISTED_BUT_BROKEN = """
import onnxruntime
onnxruntime.get_available_providers = lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
"""


def test_serve_configured_for_a_provider_the_session_cannot_use_stays_unhealthy(iris_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(CUDA_LISTED_BUT_BROKEN)
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO_ROOT)]),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(iris_dir),
        "SERVING_PROVIDERS": "CUDAExecutionProvider",
        "LOG_LEVEL": "INFO",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.server", "serve"],
        env=env,
        cwd=REPO_ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        statuses: list[int] = []
        deadline = time.monotonic() + 3  # iris loads in well under a second when nothing is wrong
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # not listening yet
                statuses.append(call(port, "GET", "/ping")[0])
            time.sleep(0.2)
        assert statuses, "serve never answered /ping"
        assert set(statuses) == {503}
        assert process.poll() is None  # still up, answering 503, so SageMaker reports the container unhealthy
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert "model failed to load" in stderr
    assert "execution provider 'CUDAExecutionProvider' was configured (SERVING_PROVIDERS)" in stderr
    assert "would run on CPUExecutionProvider" in stderr
