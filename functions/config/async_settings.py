"""Settings of the async path, read from the environment by the router, the result Lambda and the sweeper."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from functions.config.limits import ASYNC_MAX_INVOCATION_TIMEOUT_S, ASYNC_MAX_REQUEST_TTL_S

ASYNC_ENVIRONMENT_VARIABLES: Final[tuple[str, ...]] = (
    "ASYNC_BUCKET",
    "JOB_TABLE",
    "IDEMPOTENCY_TABLE",
    "ASYNC_INVOCATION_TIMEOUT_S",
    "ASYNC_REQUEST_TTL_S",
    "JOB_RESULT_INLINE_MAX_BYTES",
)


class AsyncSettingsError(ValueError):
    """The async path is configured but an environment variable is missing or unusable."""


@dataclass(frozen=True)
class AsyncSettings:
    bucket: str
    job_table: str
    idempotency_table: str | None = None
    invocation_timeout_s: int = 900
    request_ttl_s: int = 3600
    inline_result_max_bytes: int = 1024 * 1024

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> AsyncSettings | None:
        """None when the environment configures no async path (no ASYNC_BUCKET and no JOB_TABLE)."""
        bucket, table = environ.get("ASYNC_BUCKET", ""), environ.get("JOB_TABLE", "")
        if not bucket and not table:
            return None
        if not bucket or not table:
            raise AsyncSettingsError("ASYNC_BUCKET and JOB_TABLE go together: set both or neither")
        timeout = _int(environ, "ASYNC_INVOCATION_TIMEOUT_S", 900, upper=ASYNC_MAX_INVOCATION_TIMEOUT_S)
        return cls(
            bucket=bucket,
            job_table=table,
            idempotency_table=environ.get("IDEMPOTENCY_TABLE") or None,
            invocation_timeout_s=timeout,
            request_ttl_s=_int(environ, "ASYNC_REQUEST_TTL_S", 3600, upper=ASYNC_MAX_REQUEST_TTL_S),
            inline_result_max_bytes=_int(environ, "JOB_RESULT_INLINE_MAX_BYTES", 1024 * 1024, upper=5 * 1024 * 1024),
        )


def _int(environ: Mapping[str, str], name: str, default: int, *, upper: int) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or not 0 < int(raw) <= upper:
        raise AsyncSettingsError(f"{name}={raw!r}: must be a whole number from 1 to {upper}")
    return int(raw)
