"""A model directory as SageMaker lays it out for a container: the packer's model.tar.gz, unpacked.

Tests that run the serving code as a process use this rather than copying files by hand, so they exercise
the archive the templates upload (infra/model_package.py) and the signature.json it really holds.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from functions.config.model_types import ModelsConfig
from functions.config.models import load_models_config
from infra.model_package import REPO_ROOT, package_model


def unpack_model(
    target: Path, name: str = "iris", *, models: ModelsConfig | None = None, repo_root: Path = REPO_ROOT
) -> Path:
    """Pack ``name`` from ``models`` (default: functions/models.json) and unpack it into ``target``, as
    SageMaker unpacks ``ModelDataUrl`` into ``/opt/ml/model``; return ``target``."""
    config = models if models is not None else load_models_config()
    model = config.model(name)
    assert model is not None, f"no model {name!r} in {config.source}"
    archive = package_model(config, model, repo_root=repo_root, output_dir=target.parent / f".{target.name}-package")
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as bundle:
        bundle.extractall(target, filter="data")
    return target
