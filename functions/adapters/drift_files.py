"""Where the drift job reads baselines (the Lambda layer's directory in AWS, each artifact's baseline.json in
local mode) and writes reports (S3 in AWS, a directory in local mode)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.adapters import aws_clients
from functions.config.drift_contract import BASELINES_LAYER_SUFFIX
from functions.domain.drift import Baseline


class BaselinesMissingError(FileNotFoundError):
    """The drift job's baselines directory is absent or holds no baseline: it would compare nothing."""


def load_directory_baselines(directory: Path) -> dict[str, Baseline]:
    """Each ``<model>.json`` of ``directory`` (the drift function's baselines layer), by model name."""
    paths = sorted(directory.glob(f"*{BASELINES_LAYER_SUFFIX}")) if directory.is_dir() else []
    if not paths:
        raise BaselinesMissingError(
            f"no baseline {BASELINES_LAYER_SUFFIX} files in {directory}: the drift job's baselines layer is missing"
        )
    return load_file_baselines({path.name.removesuffix(BASELINES_LAYER_SUFFIX): path for path in paths})


def load_file_baselines(paths: Mapping[str, Path]) -> dict[str, Baseline]:
    return {model: Baseline.from_json(json.loads(path.read_text())) for model, path in paths.items()}


class S3ReportWriter:
    def __init__(self, bucket: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._client = s3_client

    def __call__(self, key: str, html: str) -> str:
        s3 = self._client or aws_clients.client("s3")
        s3.put_object(Bucket=self.bucket, Key=key, Body=html.encode(), ContentType="text/html; charset=utf-8")
        return f"s3://{self.bucket}/{key}"


class DirectoryReportWriter:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, key: str, html: str) -> str:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(html)
        return str(path)
