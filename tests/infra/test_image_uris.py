"""Deep Learning Container URIs resolved offline with the SageMaker SDK, which stays out of every Lambda.

The resolution tests need the optional ``dlc`` extra and are skipped without it; the tests of the error
without the SDK and of the Lambda import paths always run.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config.formats import ECR_IMAGE_PATTERN
from infra.image_uris import DLC_EXTRA_INSTALL_HINT, DlcResolutionError, resolve_dlc_image

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = ROOT / "functions"


def _sdk_importable() -> bool:
    try:
        importlib.import_module("sagemaker.core.image_uris")
    except ImportError:
        return False
    return True


requires_sdk = pytest.mark.skipif(
    not _sdk_importable(),
    reason=f"the SageMaker SDK (the 'dlc' extra) is not installed: {DLC_EXTRA_INSTALL_HINT}",
)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any socket connection fails, so a resolution that reached for the network would error."""

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise OSError("network access during DLC resolution")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@requires_sdk
@pytest.mark.usefixtures("no_network")
def test_resolve_dlc_image_pytorch_gpu_offline_returns_the_ecr_uri_the_templates_accept() -> None:
    uri = resolve_dlc_image(
        "pytorch", "2.6", region="us-east-1", instance_type="ml.g5.xlarge", py_version="py312", image_scope="inference"
    )

    assert uri == "763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-gpu-py312"
    assert ECR_IMAGE_PATTERN.match(uri), uri


@requires_sdk
@pytest.mark.usefixtures("no_network")
def test_resolve_dlc_image_cpu_instance_in_other_region_returns_that_regions_cpu_image() -> None:
    uri = resolve_dlc_image("pytorch", "2.6", region="eu-west-1", instance_type="ml.m5.xlarge", py_version="py312")

    assert uri.startswith("763104351884.dkr.ecr.eu-west-1.amazonaws.com/pytorch-inference:")
    assert uri.endswith(":2.6-cpu-py312")


@requires_sdk
@pytest.mark.usefixtures("no_network")
def test_resolve_dlc_image_without_py_version_uses_the_only_one_listed() -> None:
    uri = resolve_dlc_image("pytorch", "2.6", region="us-east-1", instance_type="ml.g5.xlarge")

    assert uri.endswith(":2.6-gpu-py312")


@requires_sdk
def test_resolve_dlc_image_unknown_framework_raises_listing_known_ones() -> None:
    with pytest.raises(DlcResolutionError, match=r"unknown Deep Learning Container framework 'pytorchh'") as info:
        resolve_dlc_image("pytorchh", "2.6", region="us-east-1", instance_type="ml.g5.xlarge")

    assert "pytorch" in str(info.value).split("knows:", 1)[1]


@requires_sdk
@pytest.mark.parametrize(
    ("version", "py_version", "region", "mentioned"),
    [
        ("0.0.1", "py312", "us-east-1", "Unsupported pytorch version: 0.0.1"),
        ("2.6", "py27", "us-east-1", "Unsupported Python version: py27"),
        ("2.6", "py312", "mars-east-1", "Unsupported region: mars-east-1"),
    ],
)
def test_resolve_dlc_image_unknown_combination_raises_with_the_sdks_reason(
    version: str, py_version: str, region: str, mentioned: str
) -> None:
    with pytest.raises(DlcResolutionError, match=r"no Deep Learning Container for framework='pytorch'") as info:
        resolve_dlc_image("pytorch", version, region=region, instance_type="ml.g5.xlarge", py_version=py_version)

    assert mentioned in str(info.value)
    assert isinstance(info.value.__cause__, ValueError)


def test_resolve_dlc_image_without_sdk_names_the_dlc_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import sagemaker` fail; drop loaded submodules too, or a cached
    # sagemaker.core.image_uris (from the tests above) would be returned without touching its parent.
    for name in [name for name in sys.modules if name.startswith("sagemaker.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "sagemaker", None)

    with pytest.raises(DlcResolutionError) as info:
        resolve_dlc_image("pytorch", "2.6", region="us-east-1", instance_type="ml.g5.xlarge", py_version="py312")

    message = str(info.value)
    assert "pip install -e '.[dlc]'" in message
    assert "'dlc' extra" in message
    assert isinstance(info.value.__cause__, ImportError)


# Run in a fresh interpreter: records every attempt to import sagemaker (even one a try/except would
# swallow, even where the SDK is not installed), then prints what was attempted and what got loaded.
_IMPORT_PROBE = """
import importlib, json, pkgutil, sys

attempted = []

class Recorder:
    def find_spec(self, name, path=None, target=None):
        if name == "sagemaker" or name.startswith("sagemaker."):
            attempted.append(name)
        return None

sys.meta_path.insert(0, Recorder())
for name in sys.argv[1:]:
    if name == "functions.*":
        import functions
        for info in pkgutil.walk_packages(functions.__path__, "functions."):
            importlib.import_module(info.name)
    else:
        importlib.import_module(name)
loaded = sorted(m for m in sys.modules if m == "sagemaker" or m.startswith("sagemaker."))
print(json.dumps({"attempted": sorted(set(attempted)), "loaded": loaded}))
"""


def _probe_imports(*modules: str, extra_env: dict[str, str] | None = None) -> dict[str, list[str]]:
    env = {k: v for k, v in os.environ.items() if k != "MODELS_CONFIG_PATH"}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}, **(extra_env or {}))
    done = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *modules],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_router_handler_import_never_imports_sagemaker_sdk() -> None:
    assert _probe_imports("functions.handlers.router.handler") == {"attempted": [], "loaded": []}


def test_every_module_under_functions_imports_without_sagemaker_sdk() -> None:
    # The result and sweeper handlers build their settings at import; dummy names are enough for that.
    probed = _probe_imports(
        "functions.*",
        extra_env={
            "ASYNC_BUCKET": "bucket",
            "JOB_TABLE": "jobs",
            "ROUTER_FUNCTION_NAME": "router",
            "ROUTER_FUNCTION_VERSION": "1",
        },
    )

    assert probed == {"attempted": [], "loaded": []}


def test_image_uris_module_imports_without_sdk_and_does_not_load_it() -> None:
    assert _probe_imports("infra.image_uris") == {"attempted": [], "loaded": []}


def test_no_source_under_functions_mentions_sagemaker_sdk_or_image_uris() -> None:
    # Catches imports inside function bodies, which importing the modules does not execute.
    offenders = []
    for path in sorted(FUNCTIONS_DIR.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "sagemaker" or name == "infra.image_uris":
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")

    assert offenders == []
