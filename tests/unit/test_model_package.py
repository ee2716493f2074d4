"""The model.tar.gz packer: what SageMaker unpacks into /opt/model, byte for byte reproducible."""

from __future__ import annotations

import copy
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.model_package import REPO_ROOT, main, package_model

SHIPPED: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())


def test_packs_the_model_and_its_signature_reproducibly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["iris", "--output-dir", str(tmp_path / "a")]) == 0
    assert main(["iris", "--output-dir", str(tmp_path / "b")]) == 0
    [first] = (tmp_path / "a").glob("*.tar.gz")
    [second] = (tmp_path / "b").glob("*.tar.gz")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as archive:
        assert archive.getnames() == ["model.onnx", "signature.json"]
        signature = json.loads(archive.extractfile("signature.json").read())  # type: ignore[union-attr]
        weights = archive.extractfile("model.onnx").read()  # type: ignore[union-attr]
    assert sorted(signature) == ["inputs", "name", "outputs", "platform", "version"]
    assert signature["name"] == "iris"
    assert weights == Path("layers/models/iris/model.onnx").read_bytes()
    assert "model.onnx + signature.json" in capsys.readouterr().out


def test_unknown_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["nope", "--output-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert "no model 'nope'" in capsys.readouterr().err


def packed(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """The iris archive packed from the shipped config with ``change`` applied to iris's entry."""
    document = copy.deepcopy(SHIPPED)
    change(document["models"][0])
    directory = tmp_path / str(len(list(tmp_path.iterdir())))
    directory.mkdir()
    (directory / "models.json").write_text(json.dumps(document))
    models = load_models_config(directory / "models.json")
    return package_model(models, models.models[0], repo_root=REPO_ROOT, output_dir=directory / "out")


ROUTER_ONLY_CHANGES: list[tuple[str, Callable[[dict[str, Any]], object]]] = [
    ("route", lambda entry: entry["route"].update(async_endpoint="iris-batch")),
    ("limits", lambda entry: entry["limits"].update(max_batch_rows=10, max_body_bytes=2048)),
    ("resilience", lambda entry: entry.update(resilience={"retry": {"max_attempts": 5}, "fallback": "last_good"})),
    ("batching", lambda entry: entry.update(batching={"max_batch_size": 8, "max_queue_delay_ms": 4})),
    ("artifact path", lambda entry: entry.update(artifact="layers/models/iris/../iris/model.onnx")),
]


@pytest.mark.parametrize(
    "change", [case[1] for case in ROUTER_ONLY_CHANGES], ids=[case[0] for case in ROUTER_ONLY_CHANGES]
)
def test_router_only_config_change_leaves_the_archive_hash_unchanged(
    tmp_path: Path, change: Callable[[dict[str, Any]], object]
) -> None:
    before = packed(tmp_path, lambda entry: None)
    after = packed(tmp_path, change)
    assert after.name == before.name  # the digest in the name is what the CDK asset and the CfnModel follow
    assert after.read_bytes() == before.read_bytes()


@pytest.mark.parametrize(
    "change",
    [
        lambda entry: entry.update(version="2"),
        lambda entry: entry["inputs"][0].update(range={"min": 0.0, "max": 20.0}),
        lambda entry: entry["outputs"].pop(),
    ],
    ids=["version", "input range", "outputs"],
)
def test_signature_change_repacks_the_archive(tmp_path: Path, change: Callable[[dict[str, Any]], object]) -> None:
    assert packed(tmp_path, change).name != packed(tmp_path, lambda entry: None).name
