"""The serving images cannot be built here (no Docker engine), so their structure is checked instead:
bases pinned by tag, every COPY source present and not excluded by .dockerignore, the entrypoint script
executable and working as a process, pins equal to the project's, and the copied code needing nothing
the images do not install."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.sagemaker_layout import unpack_model

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = [REPO_ROOT / "docker/serving/Dockerfile", REPO_ROOT / "docker/serving-gpu/Dockerfile"]
SERVE_SCRIPT = REPO_ROOT / "docker/serving/serve"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    pairs = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, arguments = stripped.partition(" ")
            pairs.append((keyword.upper(), arguments.strip()))
    return pairs


def pins(requirements: Path) -> dict[str, str]:
    found = {}
    for raw in requirements.read_text().splitlines():
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"{requirements}: {line!r} is not pinned with =="
            found[name.strip().lower()] = version.strip()
    return found


def project_pins() -> dict[str, str]:
    serving = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["serving"]
    return {name.lower(): version for name, _, version in (entry.partition("==") for entry in serving)}


def dockerignore_excludes(path: str) -> bool:
    excluded = False
    for line in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = Path(path).parts
        if any(fnmatch.fnmatch("/".join(parts[: depth + 1]), pattern) for depth in range(len(parts))):
            excluded = not negate
    return excluded


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_base_is_pinned_by_version_tag(dockerfile: Path) -> None:
    bases = [arguments for keyword, arguments in instructions(dockerfile) if keyword == "FROM"]
    assert len(bases) == 1
    tag = bases[0].partition(":")[2]
    assert re.match(r"^\d+\.\d+(\.\d+)?-", tag), f"{bases[0]} is not pinned to a version tag"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_copies_only_files_that_exist_and_reach_the_build_context(dockerfile: Path) -> None:
    copies = [arguments.split() for keyword, arguments in instructions(dockerfile) if keyword == "COPY"]
    assert copies
    for *sources, _destination in copies:
        for source in sources:
            assert not source.startswith("--"), "COPY --from/--chown is not expected here"
            assert (REPO_ROOT / source).exists(), f"{dockerfile.name}: COPY {source} does not exist"
            assert not dockerignore_excludes(source.rstrip("/")), f".dockerignore drops {source}"
    copied_code = [sources for *sources, _ in copies if any(source.startswith("functions") for source in sources)]
    assert copied_code == [["functions/"]], "the image carries the runtime package and nothing else of the repo"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.parent.name)
def test_dockerfile_entrypoint_is_the_serve_script_so_docker_run_image_serve_works(dockerfile: Path) -> None:
    found = dict(instructions(dockerfile))
    assert found["ENTRYPOINT"] == '["/usr/local/bin/serve"]'
    assert found["CMD"] == '["serve"]'
    assert "docker/serving/serve /usr/local/bin/serve" in [
        arguments for keyword, arguments in instructions(dockerfile) if keyword == "COPY"
    ]
    assert "SAGEMAKER_BIND_TO_PORT=8080" in found["ENV"]
    assert SERVE_SCRIPT.read_text().startswith("#!/bin/sh\n")
    assert os.access(SERVE_SCRIPT, os.X_OK)


def test_gpu_image_asks_for_the_cuda_provider() -> None:
    env = dict(instructions(DOCKERFILES[1]))["ENV"]
    assert "SERVING_PROVIDERS=CUDAExecutionProvider" in env


@pytest.mark.parametrize(
    ("requirements", "runtime"),
    [("docker/serving/requirements.txt", "onnxruntime"), ("docker/serving-gpu/requirements.txt", "onnxruntime-gpu")],
)
def test_image_pins_match_the_project(requirements: str, runtime: str) -> None:
    image, project = pins(REPO_ROOT / requirements), project_pins()
    # click is granian's one dependency: the image pins it too, so a rebuild installs what was tested.
    assert set(image) == {"granian", "click", "numpy", runtime}
    assert set(project) == {"granian", "numpy", "onnxruntime"}
    assert image["granian"] == project["granian"]
    assert image["numpy"] == project["numpy"]
    assert image[runtime] == project["onnxruntime"]
    constraints = pins(REPO_ROOT / "constraints.txt") if (REPO_ROOT / "constraints.txt").exists() else {}
    for name in ("granian", "numpy", "onnxruntime"):
        if name in constraints:
            assert constraints[name] == project[name]
    if "click" in constraints:
        assert image["click"] == constraints["click"]


def test_serve_script_starts_the_server_as_a_process(tmp_path: Path) -> None:
    model_dir = unpack_model(tmp_path / "opt/ml/model", "iris")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO_ROOT),
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "SM_MODEL_DIR": str(model_dir),
    }
    process = subprocess.Popen([str(SERVE_SCRIPT), "serve"], env=env, cwd=tmp_path, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "serve did not become healthy"
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_script_refuses_to_train() -> None:
    result = subprocess.run([str(SERVE_SCRIPT), "train"], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "only serves" in result.stderr


def test_serving_code_runs_with_only_what_the_image_installs(tmp_path: Path) -> None:
    # The image has granian (and click), numpy and onnxruntime only: block every other third-party import the
    # repo's venv has.
    probe = """
import importlib.abc, json, sys
from pathlib import Path
BLOCKED = {"boto3", "botocore", "aws_lambda_powertools", "pydantic", "moto", "aws_cdk", "onnx", "sklearn", "gunicorn"}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not in the serving image")
sys.meta_path.insert(0, Block())
from serving.server import load_model
from serving.service import InvocationService
from serving.batching import BatchingSettings
root = Path(sys.argv[1])
model_dir = root / "model"
service = InvocationService(load_model(model_dir), batching=BatchingSettings())
body = b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}]}'
print(service.invoke(body).status)
"""
    staged = Path(os.environ.get("TMPDIR", "/tmp")) / f"serving-image-probe-{os.getpid()}"
    try:
        unpack_model(staged / "model", "iris")
        result = subprocess.run(
            [sys.executable, "-c", probe, str(staged)], capture_output=True, text=True, cwd=REPO_ROOT, check=False
        )
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "200"
