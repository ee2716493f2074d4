"""The model.tar.gz packer: what SageMaker unpacks into /opt/model, byte for byte reproducible."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from infra.model_package import main


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
    assert signature["name"] == "iris"
    assert weights == Path("layers/models/iris/model.onnx").read_bytes()
    assert "model.onnx + signature.json" in capsys.readouterr().out


def test_unknown_model_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["nope", "--output-dir", str(tmp_path)])
    assert stopped.value.code == 2
    assert "no model 'nope'" in capsys.readouterr().err
