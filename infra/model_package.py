"""Pack a model from the repo into the ``model.tar.gz`` SageMaker unpacks into ``/opt/ml/model``.

The serving container (serving/server.py) loads ``model.onnx`` and checks it against
``signature.json``: the part of the model's config entry a container needs (name, version, platform, inputs,
outputs; :func:`functions.config.models.serving_signature`). Each version of a model is packed on its own: its
artifact (the model's when it names none) and the model's signature with its own ``version``, which the
container answers as ``model_version``, so a version that shares the model's file still names itself. The
router's own settings (route, limits, resilience) stay out, and batching reaches the container as ``CfnModel``
environment instead. The archive is byte-for-byte reproducible (fixed mtimes, owners and order), so the CDK
asset hash, and with it the ``CfnModel``, only changes when the model file or its signature does.

The archive is this repo's serving contract. An image given as ``{"dlc": ...}`` in the stage config does not
read it, so such a model must bring its own ``model_data_url`` (infra/config/endpoints.py checks that).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from functions.config.model_types import ModelConfig, ModelsConfig
from functions.config.models import parse_model_config, serving_signature

REPO_ROOT: Final[Path] = Path(__file__).resolve().parent.parent
# Where `make layers` (layers/onnxruntime/build.py) leaves the onnxruntime layer the in-Lambda tier needs.
ONNXRUNTIME_LAYER_ZIP: Final[Path] = REPO_ROOT / "layers" / "onnxruntime" / "build" / "onnxruntime-layer.zip"
MODEL_FILE: Final[str] = "model.onnx"
SIGNATURE_FILE: Final[str] = "signature.json"
DEFAULT_OUTPUT_DIR: Final[Path] = Path(tempfile.gettempdir()) / "inference-router-model-packages"


class ModelPackageError(ValueError):
    """The model cannot be packaged; the message names the model and the file."""


def raw_model_entry(models: ModelsConfig, model: ModelConfig) -> dict[str, Any]:
    """The model's entry exactly as written in the model config file (its signature goes into the archive)."""
    source = Path(models.source)
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ModelPackageError(f"{models.source}: cannot re-read model {model.name!r}: {error}") from error
    for entry in document.get("models", []):
        if isinstance(entry, dict) and entry.get("name") == model.name:
            if parse_model_config(entry, str(source)) != model:
                raise ModelPackageError(f"{source}: model {model.name!r} changed while the app was synthesizing")
            return entry
    raise ModelPackageError(f"{source}: model {model.name!r} not found")


def _add(archive: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(payload))


def package_model(
    models: ModelsConfig,
    model: ModelConfig,
    *,
    version: str | None = None,
    repo_root: Path = REPO_ROOT,
    output_dir: Path = DEFAULT_OUTPUT_DIR,
) -> Path:
    """Write ``<output_dir>/<model>[-v<version>]-<digest>.tar.gz`` holding the artifact of ``version`` (default:
    the primary) and the model's signature naming that version; return its path."""
    entry = model.versions[0] if version is None else model.version_by_name.get(version)
    if entry is None:
        known = ", ".join(repr(name) for name in model.version_by_name)
        raise ModelPackageError(f"{models.source}: model {model.name!r} has no version {version!r} ({known})")
    what = f"model {model.name!r}" if entry.version == model.version else f"model {model.name!r} version {version!r}"
    if entry.artifact is None:
        raise ModelPackageError(f"{models.source}: {what} has no artifact to package")
    artifact = (repo_root / entry.artifact).resolve()
    if artifact.suffix != ".onnx":
        raise ModelPackageError(f"{models.source}: {what}: artifact {entry.artifact} is not an .onnx file")
    try:
        weights = artifact.read_bytes()
    except OSError as error:
        raise ModelPackageError(
            f"{models.source}: {what}: artifact {entry.artifact} cannot be read: {error.strerror}"
        ) from error
    fields = {**serving_signature(raw_model_entry(models, model)), "version": entry.version}
    signature = json.dumps(fields, indent=2, sort_keys=True).encode()

    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _add(archive, MODEL_FILE, weights)
        _add(archive, SIGNATURE_FILE, signature)
    compressed = io.BytesIO()
    with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, filename="") as stream:
        stream.write(tar_bytes.getvalue())
    payload = compressed.getvalue()

    digest = hashlib.sha256(payload).hexdigest()[:16]
    output_dir.mkdir(parents=True, exist_ok=True)
    stem = model.name if entry.version == model.version else f"{model.name}-v{entry.version}"
    target = output_dir / f"{stem}-{digest}.tar.gz"
    if not target.exists():
        # Write then rename, so parallel synths (pytest-xdist) never read half a file.
        partial = output_dir / f".{target.name}.{os.getpid()}.partial"
        partial.write_bytes(payload)
        partial.replace(target)
    return target


def stage_model_layer(models: Sequence[ModelConfig], staging: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Lay out the in-Lambda tier's model layer in ``staging``: each model's file at its repo path, which is
    ``/opt/<artifact>`` once Lambda extracts the layer. Models without an artifact are left out.

    Example:
        >>> stage_model_layer([config.model("iris")], Path("/tmp/layer"))  # /tmp/layer/layers/models/iris/model.onnx
    """
    for model in models:
        if model.artifact is None:
            continue
        target = staging / model.artifact
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(repo_root / model.artifact, target)
    return staging


def main(argv: list[str] | None = None) -> int:
    """``python -m infra.model_package iris [--version V] [--output-dir DIR]``: write the model.tar.gz SageMaker
    unpacks for the model's version V (default: its primary version)."""
    import argparse

    from functions.config.config_reader import ConfigError
    from functions.config.models import load_models_config

    parser = argparse.ArgumentParser(prog="python -m infra.model_package", description=main.__doc__)
    parser.add_argument("model", help="a model name from the model config")
    parser.add_argument("--version", default=None, help="one of the model's versions (default: its primary)")
    parser.add_argument("--config", default=None, help="model config file (default functions/models.json)")
    parser.add_argument("--output-dir", type=Path, default=Path("build/models"), help="default: build/models")
    args = parser.parse_args(argv)
    try:
        models = load_models_config(args.config)
    except ConfigError as error:
        parser.exit(2, f"model_package: {error}\n")
    model = models.model(args.model)
    if model is None:
        parser.exit(2, f"model_package: no model {args.model!r} in {models.source}\n")
    try:
        archive = package_model(models, model, version=args.version, output_dir=args.output_dir)
    except ModelPackageError as error:
        parser.exit(2, f"model_package: {error}\n")
    version = args.version or model.version
    print(
        f"{archive} ({archive.stat().st_size} bytes): {MODEL_FILE} + {SIGNATURE_FILE} "
        f"for model {model.name!r} version {version!r}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
