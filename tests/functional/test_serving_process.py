"""``serve`` as SageMaker runs it — a process, its model directory the packer's model.tar.gz unpacked as
/opt/ml/model (via SM_MODEL_DIR) — with dynamic batching on: answers equal the in-process model's, every response has a
Content-Length, concurrent requests share runs, and a request that breaks its run fails alone."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
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
from tests.helpers.onnx_graphs import LOOKUP_TENSORS, lookup_model
from tests.helpers.sagemaker_layout import unpack_model

REPO_ROOT = Path(__file__).resolve().parents[2]
CONCURRENT = 8
ROUNDS = 20  # stacking depends on thread timing: try a few rounds of concurrent requests before giving up


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(
    port: int, method: str, path: str, body: bytes | None = None, *, length: bool = True
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Status, headers (names case-insensitive, as HTTP's are) and body of one request."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if length:
            connection.request(method, path, body=body, headers={"Content-Type": "application/json"})
        else:
            connection.putrequest(method, path)
            connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read()
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


def wait_until_healthy(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(OSError):  # not listening yet
            if call(port, "GET", "/ping")[0] == 200:
                return
        if time.monotonic() > deadline or process.poll() is not None:
            pytest.fail("serve did not become healthy within 30 s")
        time.sleep(0.1)


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
        wait_until_healthy(port, process)
        yield port
    finally:
        # Cleanup only (graceful shutdown has its own test): a loaded machine may take longer to stop workers.
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
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


def concurrently(port: int, bodies: list[bytes]) -> list[tuple[int, http.client.HTTPMessage, bytes]]:
    barrier = threading.Barrier(len(bodies))

    def one(body: bytes) -> tuple[int, http.client.HTTPMessage, bytes]:
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


def send_raw(port: int, head: bytes) -> socket.socket:
    connection = socket.create_connection(("127.0.0.1", port), timeout=10)
    connection.sendall(head)
    return connection


def read_response(connection: socket.socket) -> tuple[int, bytes]:
    """Status and body of one response read off a raw connection (its head carries Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        assert chunk, f"the connection closed before a response head: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return int(head.split()[1]), body


def invocation_head(length: int) -> bytes:
    return f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()


def test_serve_refuses_a_body_over_its_bound_before_reading_it(iris_dir: Path) -> None:
    limit = 1024
    for port in start(iris_dir, SERVING_MAX_BODY_BYTES=str(limit)):
        # Only the head is sent: a server that read the announced megabyte first would wait, not answer.
        connection = send_raw(port, invocation_head(1024 * 1024))
        try:
            started = time.monotonic()
            status, body = read_response(connection)
        finally:
            connection.close()
        assert status == 413
        assert time.monotonic() - started < 5
        assert json.loads(body) == {
            "error": f"request body is 1048576 bytes; this endpoint accepts at most {limit} (SERVING_MAX_BODY_BYTES)"
        }
        within = iris_body(0)
        assert call(port, "POST", "/invocations", within + b" " * (limit - len(within)))[0] == 200
        assert call(port, "POST", "/invocations", within + b" " * (limit + 1 - len(within)))[0] == 413


def test_serve_takes_bodies_up_to_the_configured_bound_beyond_the_default(iris_dir: Path) -> None:
    padded = iris_body(0) + b" " * (7 * 1024 * 1024)  # valid JSON over the 6 MB default
    for port in start(iris_dir):
        # The whole body would not be read: the server answers and closes, so a client still sending it breaks.
        connection = send_raw(port, invocation_head(len(padded)))
        try:
            assert read_response(connection)[0] == 413
        finally:
            connection.close()
    for port in start(iris_dir, SERVING_MAX_BODY_BYTES=str(8 * 1024 * 1024)):
        status, _, answer = call(port, "POST", "/invocations", padded)
        assert status == 200, answer


def test_serve_refuses_to_start_with_a_body_bound_sagemaker_could_not_deliver(iris_dir: Path) -> None:
    env = {**os.environ, "SM_MODEL_DIR": str(iris_dir), "SERVING_MAX_BODY_BYTES": str(2 * 1024**3)}
    result = subprocess.run(
        [sys.executable, "-m", "serving.server", "serve"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "SERVING_MAX_BODY_BYTES must be a byte count from 1 to 1073741824" in result.stderr


def test_serve_on_sigterm_finishes_the_request_in_flight_then_exits(iris_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "SAGEMAKER_BIND_TO_PORT": str(port), "SM_MODEL_DIR": str(iris_dir), "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen([sys.executable, "-m", "serving.server", "serve"], env=env, cwd=REPO_ROOT)
    try:
        wait_until_healthy(port, process)
        body = iris_body(3)
        connection = send_raw(port, invocation_head(len(body)) + body[:10])
        time.sleep(0.5)  # the worker is now reading this request's body
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        connection.sendall(body[10:])
        status, answer = read_response(connection)
        connection.close()
        assert status == 200, answer
        assert json.loads(answer)["id"] == "r3"
        assert process.wait(timeout=10) == 0
        with pytest.raises(ConnectionRefusedError):
            call(port, "GET", "/ping")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
