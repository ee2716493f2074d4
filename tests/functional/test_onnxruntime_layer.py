"""The arm64 onnxruntime layer (layers/onnxruntime/build.py): aarch64 shared objects for the Lambda's
Python ABI, nothing an InferenceSession needs stripped, and function + layers under Lambda's 250 MB.

The build downloads ~37 MB of wheels from PyPI, so these tests read an existing build and skip without one;
``BUILD_LAYERS=1`` (set by ``make test``, which builds the layer first) makes them build it when absent and
check that the same recipe, built for this machine (~40 MB more wheels from PyPI, cached under the layer's
build dir), imports and runs a model.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from functions.config.model_types import ModelConfig
from functions.config.models import load_models_config
from infra.model_package import stage_model_layer
from layers.onnxruntime import build as layer_build

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_LAYERS = os.environ.get("BUILD_LAYERS") == "1"
ZIP_PATH = layer_build.DEFAULT_BUILD_DIR / layer_build.ZIP_NAME
ABI_SUFFIX = ".cpython-" + layer_build.DEFAULT_PYTHON_VERSION.replace(".", "") + "-aarch64-linux-gnu.so"
EM_AARCH64 = 183
LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024
# The AWS-managed Powertools layer is attached too and cannot be downloaded here; its Python packages are
# ~5 MB in our venv, so 40 MB leaves room for what the public layer bundles with them.
POWERTOOLS_LAYER_ALLOWANCE = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def layer_zip() -> zipfile.ZipFile:
    if BUILD_LAYERS and not ZIP_PATH.exists():
        layer_build.build()
    elif not ZIP_PATH.exists():
        pytest.skip(
            f"{ZIP_PATH.relative_to(REPO_ROOT)} is absent: run `python -m layers.onnxruntime.build` or set BUILD_LAYERS=1"
        )
    return zipfile.ZipFile(ZIP_PATH)


def elf_machine(header: bytes) -> tuple[int, int]:
    """(ELF class, e_machine) of an ELF header; class 2 is 64-bit."""
    assert header[:4] == b"\x7fELF", "not an ELF file"
    assert header[5] == 1, "not little-endian"
    return header[4], struct.unpack_from("<H", header, 18)[0]


def router_asset_bytes() -> int:
    """The router function's asset: functions/ without caches (serving counted too, as an upper bound)."""
    return sum(
        path.stat().st_size
        for path in (REPO_ROOT / "functions").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def test_layer_zip_puts_everything_under_python(layer_zip: zipfile.ZipFile) -> None:
    names = layer_zip.namelist()
    assert names
    assert all(name.startswith("python/") for name in names)
    assert "python/onnxruntime/__init__.py" in names
    assert "python/numpy/__init__.py" in names


def test_layer_extension_modules_are_aarch64_for_the_lambda_python_abi(layer_zip: zipfile.ZipFile) -> None:
    shared = [info for info in layer_zip.infolist() if info.filename.endswith(".so") or ".so." in info.filename]
    extensions = [info.filename for info in shared if ".cpython-" in info.filename]
    assert "python/onnxruntime/capi/onnxruntime_pybind11_state" + ABI_SUFFIX in extensions
    assert "python/numpy/_core/_multiarray_umath" + ABI_SUFFIX in extensions
    assert [name for name in extensions if not name.endswith(ABI_SUFFIX)] == []
    for info in shared:
        with layer_zip.open(info) as handle:
            assert elf_machine(handle.read(20)) == (2, EM_AARCH64), info.filename


def test_layer_strips_what_an_inference_session_never_loads(layer_zip: zipfile.ZipFile) -> None:
    names = layer_zip.namelist()
    for stripped in layer_build.STRIPPED_DIRS:
        assert not any(name.startswith(f"python/{stripped}/") for name in names)
    assert not any("/__pycache__/" in name or "/tests/" in name or name.endswith((".pyc", ".pyi")) for name in names)
    # onnxruntime reads its own version from the installed metadata: the dist-info must survive.
    assert any(name.startswith("python/onnxruntime-") and name.endswith(".dist-info/METADATA") for name in names)


def in_lambda_models() -> list[ModelConfig]:
    """The models the model layer carries: the shipped config's ``lambda``-routed ones, or, when it has none
    (the onnxruntime layer is then not attached at all), iris as the tier's example, so the budget is always
    measured on a real staged layer."""
    config = load_models_config()
    routed = [model for model in config.models if model.route.sync == "lambda"]
    iris = config.model("iris")
    assert iris is not None
    return routed or [iris]


def test_router_function_plus_layers_stay_under_lambda_unzipped_limit(
    layer_zip: zipfile.ZipFile, tmp_path: Path
) -> None:
    # Everything Lambda extracts for the router: its asset, the onnxruntime layer, the model layer (staged by
    # the construct's own code) and the AWS-managed Powertools layer (an allowance: it cannot be fetched here).
    onnxruntime_bytes = sum(info.file_size for info in layer_zip.infolist())
    models = in_lambda_models()
    staged = stage_model_layer(models, tmp_path / "model-layer")
    model_bytes = sum(path.stat().st_size for path in staged.rglob("*") if path.is_file())
    assert model_bytes == sum((REPO_ROOT / str(model.artifact)).stat().st_size for model in models)
    function_bytes = router_asset_bytes()
    total = function_bytes + onnxruntime_bytes + model_bytes + POWERTOOLS_LAYER_ALLOWANCE
    assert total < LAMBDA_UNZIPPED_LIMIT, (
        f"{total / 1e6:.1f} MB unzipped: function {function_bytes / 1e6:.1f} MB, onnxruntime layer "
        f"{onnxruntime_bytes / 1e6:.1f} MB, model layer {model_bytes / 1e6:.1f} MB "
        f"({', '.join(model.name for model in models)}), Powertools allowance {POWERTOOLS_LAYER_ALLOWANCE / 1e6:.0f} MB"
    )


@pytest.mark.skipif(not BUILD_LAYERS, reason="BUILD_LAYERS=1 builds and runs this machine's variant of the layer")
def test_layer_recipe_built_for_this_machine_imports_and_runs_a_model(tmp_path: Path) -> None:
    # The aarch64 binaries cannot run here, so the same download/install/strip recipe is built for this
    # interpreter and platform, then used alone (no site-packages) to run the iris model.
    machine = os.uname().machine
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    platforms = [f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]
    # Built in a git-ignored dir next to the arm64 build, so its wheels are downloaded once, not every run.
    host_build = layer_build.DEFAULT_BUILD_DIR / f"host-{machine}-cp{version.replace('.', '')}"
    zip_path = layer_build.build(host_build, version, platforms)
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(tmp_path / "opt")
    probe = (
        "import sys, numpy, onnxruntime as ort\n"
        "assert ort.__file__.startswith(sys.argv[1]) and numpy.__file__.startswith(sys.argv[1])\n"
        "session = ort.InferenceSession(sys.argv[2], providers=['CPUExecutionProvider'])\n"
        "print(session.run(None, {'input': numpy.ones((2, 4), numpy.float32)})[0].tolist())\n"
    )
    layer = str(tmp_path / "opt" / "python")
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, layer, str(REPO_ROOT / "layers/models/iris/model.onnx")],
        env={"PYTHONPATH": layer, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[0, 0]"


@pytest.mark.skipif(not BUILD_LAYERS, reason="BUILD_LAYERS=1 builds the layer first")
def test_layer_rebuild_uses_the_cached_wheels(layer_zip: zipfile.ZipFile, capsys: pytest.CaptureFixture[str]) -> None:
    layer_build.download(
        layer_build.DEFAULT_BUILD_DIR / "wheels", layer_build.DEFAULT_PYTHON_VERSION, layer_build.DEFAULT_PLATFORMS
    )
    assert "wheels cached" in capsys.readouterr().out
