"""boto3 clients created once per environment, on first use, with retry and timeouts stated explicitly.

The async path's clients (S3, DynamoDB, SQS) are made lazily so a sync request's cold start never pays
for them. ``reset_clients`` is the hook tests use after pointing the environment at an emulator.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

# Control-plane-light calls on the async path: a few quick attempts, never botocore's 60 s reads.
ASYNC_PATH_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 3})


@functools.cache
def client(service: str) -> Any:
    return boto3.client(service, config=ASYNC_PATH_CONFIG)


def reset_clients() -> None:
    client.cache_clear()
