"""Where the drift job reads baselines and writes reports: S3 in AWS, a directory in local mode."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.adapters import aws_clients
from functions.config.async_contract import split_s3_uri
from functions.domain.drift import Baseline


def load_s3_baselines(uris: Mapping[str, str], s3_client: Any | None = None) -> dict[str, Baseline]:
    """Each model's baseline.json from its S3 URI (the CDK file asset the stack uploaded)."""
    s3 = s3_client or aws_clients.client("s3")
    baselines: dict[str, Baseline] = {}
    for model, uri in uris.items():
        bucket, key = split_s3_uri(uri)
        baselines[model] = Baseline.from_json(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
    return baselines


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
