"""Execution providers: what SERVING_PROVIDERS names must be what the session really runs on.

onnxruntime-gpu lists CUDAExecutionProvider as available even when the CUDA libraries fail to load, and the
session then runs on the CPU without raising. CPU onnxruntime behaves the same when handed a provider it does
not have (it warns and falls back), which is how these tests produce that fallback on a machine without a GPU.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from functions.adapters.onnx_model import CPU_PROVIDER, OnnxModel, ProviderError, choose_providers
from functions.config.model_types import ModelConfig
from functions.config.models import load_models_config
from serving import server
from tests.helpers.sagemaker_layout import unpack_model

REPO_ROOT = Path(__file__).resolve().parents[2]
IRIS_FILE = REPO_ROOT / "layers/models/iris/model.onnx"
CUDA = "CUDAExecutionProvider"
pytestmark = pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider' is not in available")


def iris_config() -> ModelConfig:
    model = load_models_config().model("iris")
    assert model is not None
    return model


def test_a_required_provider_the_session_fell_back_from_fails_the_load() -> None:
    assert CUDA not in ort.get_available_providers()  # this machine's onnxruntime has no CUDA
    with pytest.raises(ProviderError) as caught:
        OnnxModel(iris_config(), IRIS_FILE, providers=[CUDA, CPU_PROVIDER], required_providers=[CUDA])
    message = str(caught.value)
    assert f"execution provider {CUDA!r} was configured (SERVING_PROVIDERS)" in message
    assert "would run on CPUExecutionProvider" in message
    assert "refusing to serve on a fallback" in message


def test_a_provider_picked_without_configuration_may_fall_back_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="functions.adapters.onnx_model"):
        model = OnnxModel(iris_config(), IRIS_FILE, providers=[CUDA, CPU_PROVIDER])
    assert model.session.get_providers() == [CPU_PROVIDER]
    assert f"providers ['{CUDA}'] unusable, running on ['{CPU_PROVIDER}']" in caplog.text


def test_load_model_fails_when_onnxruntime_lists_cuda_but_cannot_run_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # What onnxruntime-gpu does on a host whose CUDA libraries do not load: CUDA is "available".
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU_PROVIDER])
    model_dir = unpack_model(tmp_path / "model", "iris")
    with pytest.raises(ProviderError, match="refusing to serve on a fallback"):
        server.load_model(model_dir, providers=CUDA)


def test_load_model_on_the_cpu_provider_it_was_asked_for_loads(tmp_path: Path) -> None:
    model = server.load_model(unpack_model(tmp_path / "model", "iris"), providers=CPU_PROVIDER)
    assert model.session.get_providers() == [CPU_PROVIDER]


def test_choose_providers_rejects_a_provider_this_build_lacks() -> None:
    with pytest.raises(ProviderError, match="'TensorrtExecutionProvider' is not available in this onnxruntime build"):
        choose_providers("TensorrtExecutionProvider", [CPU_PROVIDER])


@pytest.mark.parametrize(
    ("requested", "available", "chosen"),
    [
        (None, [CUDA, CPU_PROVIDER], [CUDA, CPU_PROVIDER]),
        ("", ["AzureExecutionProvider", CPU_PROVIDER], [CPU_PROVIDER]),
        (f" {CUDA} ", [CUDA, CPU_PROVIDER], [CUDA, CPU_PROVIDER]),
        (CPU_PROVIDER, [CUDA, CPU_PROVIDER], [CPU_PROVIDER]),
    ],
)
def test_choose_providers_ends_with_the_cpu_provider(
    requested: str | None, available: list[str], chosen: list[str]
) -> None:
    assert choose_providers(requested, available) == chosen
