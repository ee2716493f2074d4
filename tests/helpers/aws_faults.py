"""Faults for boto3 clients in tests: a real client whose named operations raise, a ClientError as AWS shapes
it, and a real client aimed at a port nothing listens on (fakes over mocks: everything else is real)."""

from __future__ import annotations

import socket
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


class FaultyClient:
    """A real boto3 client whose named operations raise the given error instead of calling AWS."""

    def __init__(self, client: Any, **faults: Exception) -> None:
        self._client = client
        self._faults = faults
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name in self._faults:

            def fail(*_: Any, **__: Any) -> Any:
                self.calls.append(name)
                raise self._faults[name]

            return fail
        return getattr(self._client, name)


def client_error(code: str, status: int, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)  # fmt: skip


def unreachable(service: str) -> Any:
    """A real client aimed at a port nothing listens on: connection refused, at once, once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    session = boto3.session.Session(region_name="us-east-1", aws_access_key_id="local", aws_secret_access_key="local")
    return session.client(
        service, endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(connect_timeout=1, read_timeout=1, retries={"mode": "standard", "total_max_attempts": 1}),
    )  # fmt: skip
