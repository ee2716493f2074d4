"""Each version of a model is packed with its own model file and a signature naming it, and the serving container
loaded from that package (as SageMaker unpacks it into /opt/ml/model) answers with that version."""

from __future__ import annotations

import copy
import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

from functions.config.model_types import ModelsConfig
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.model_package import REPO_ROOT, ModelPackageError, main, package_model
from serving.server import load_model
from serving.service import InvocationService

DIGITS_FILE = "layers/models/digits/model.onnx"
IRIS_FILE = "layers/models/iris/model.onnx"
IRIS_ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


def versioned(folder: Path, *versions: dict[str, Any]) -> ModelsConfig:
    document: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
    document["models"][0]["versions"] = [copy.deepcopy(version) for version in versions]
    document["models"][0]["traffic"] = {"1": 90, "2": 10}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "models.json").write_text(json.dumps(document))
    return load_models_config(folder / "models.json")


V2 = {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}}


def unpacked(archive: Path, target: Path) -> tuple[dict[str, Any], bytes]:
    target.mkdir(parents=True)
    with tarfile.open(archive) as bundle:
        bundle.extractall(target, filter="data")
    signature: dict[str, Any] = json.loads((target / "signature.json").read_text())
    return signature, (target / "model.onnx").read_bytes()


def test_a_version_without_its_own_artifact_is_packed_with_the_models_file_and_its_own_version(
    tmp_path: Path,
) -> None:
    models = versioned(tmp_path / "config", V2)
    iris = models.models[0]
    primary = package_model(models, iris, output_dir=tmp_path / "out")
    second = package_model(models, iris, version="2", output_dir=tmp_path / "out")
    assert re.fullmatch(r"iris-[0-9a-f]{16}\.tar\.gz", primary.name)
    assert re.fullmatch(r"iris-v2-[0-9a-f]{16}\.tar\.gz", second.name)
    signature, weights = unpacked(second, tmp_path / "v2")
    assert signature["version"] == "2"
    assert weights == (REPO_ROOT / IRIS_FILE).read_bytes()
    primary_signature, _ = unpacked(primary, tmp_path / "v1")
    assert primary_signature["version"] == "1"
    # Only the version differs: one contract per model.
    assert {**primary_signature, "version": "2"} == signature


def test_the_container_answers_the_version_its_package_names(tmp_path: Path) -> None:
    models = versioned(tmp_path / "config", V2)
    archive = package_model(models, models.models[0], version="2", output_dir=tmp_path / "out")
    model_dir = tmp_path / "opt_ml_model"
    unpacked(archive, model_dir)
    service = InvocationService(load_model(model_dir))
    request = {"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": IRIS_ROWS}]}
    answer = service.invoke(json.dumps(request).encode())
    assert answer.status == 200
    document = json.loads(answer.body)
    assert (document["model_name"], document["model_version"]) == ("iris", "2")


def test_a_version_with_its_own_artifact_is_packed_with_that_file(tmp_path: Path) -> None:
    # Any .onnx file will do for the packer; the container checks it against the signature when it loads.
    models = versioned(tmp_path / "config", {**V2, "artifact": DIGITS_FILE})
    archive = package_model(models, models.models[0], version="2", output_dir=tmp_path / "out")
    signature, weights = unpacked(archive, tmp_path / "v2")
    assert signature["version"] == "2"
    assert weights == (REPO_ROOT / DIGITS_FILE).read_bytes()


def test_an_unknown_version_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    models = versioned(tmp_path / "config", V2)
    with pytest.raises(ModelPackageError, match=r"model 'iris' has no version '7' \('1', '2'\)"):
        package_model(models, models.models[0], version="7", output_dir=tmp_path / "out")
    with pytest.raises(SystemExit) as stopped:
        main(["iris", "--version", "7", "--output-dir", str(tmp_path / "cli")])
    assert stopped.value.code == 2
    assert "has no version '7'" in capsys.readouterr().err


def test_an_unreadable_version_artifact_names_the_version(tmp_path: Path) -> None:
    models = versioned(tmp_path / "config", {**V2, "artifact": "layers/models/iris/missing.onnx"})
    with pytest.raises(ModelPackageError, match=r"version '2': artifact layers/models/iris/missing.onnx cannot"):
        package_model(models, models.models[0], version="2", output_dir=tmp_path / "out")


def test_the_cli_packs_a_version(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["iris", "--version", "1", "--output-dir", str(tmp_path)]) == 0
    assert "for model 'iris' version '1'" in capsys.readouterr().out
