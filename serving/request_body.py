"""How large a request body the container takes, and reading one without holding more than that in memory.

SageMaker delivers at most 4 MB to a serverless endpoint's container, 25 MB to a real-time one and 1 GB of
async input (:mod:`functions.config.limits`). Every body this project sends passes through the router first,
whose Lambda payload limit is 6 MB, so that is the default bound. ``SERVING_MAX_BODY_BYTES`` sets another, up
to the 1 GB async input limit (nothing larger can arrive), e.g. the serverless 4 MB for a container that only
serves a serverless endpoint, or more for async inputs written to S3 by producers other than the router.

The bound is checked against ``Content-Length`` before a byte of the body is read; a body without one is
refused (411), so what is read is never more than the bound.

Example:
    >>> limit = max_body_bytes_from_environ({"SERVING_MAX_BODY_BYTES": "4194304"})
    >>> body_or_refusal(headers.get("Content-Length"), limit, stream.read)  # bytes, or an Answer to send
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Final

from functions.config.limits import ASYNC_MAX_INPUT_BYTES, LAMBDA_MAX_BODY_BYTES
from serving.service import Answer

MAX_BODY_BYTES_ENV: Final[str] = "SERVING_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES: Final[int] = LAMBDA_MAX_BODY_BYTES
JSON_HEADER_SIZE: Final[str] = "json-header-size"


class BodyLimitError(ValueError):
    """``SERVING_MAX_BODY_BYTES`` is not a byte count SageMaker could deliver."""


def max_body_bytes_from_environ(environ: Mapping[str, str]) -> int:
    raw = environ.get(MAX_BODY_BYTES_ENV) or str(DEFAULT_MAX_BODY_BYTES)
    if not raw.strip().isdigit() or not 1 <= int(raw) <= ASYNC_MAX_INPUT_BYTES:
        raise BodyLimitError(
            f"{MAX_BODY_BYTES_ENV} must be a byte count from 1 to {ASYNC_MAX_INPUT_BYTES} "
            f"(SageMaker's async input limit), got {raw!r}"
        )
    return int(raw)


def _refusal(status: HTTPStatus, message: str) -> Answer:
    return Answer(status, json.dumps({"error": message}).encode())


def body_or_refusal(content_length: str | None, max_bytes: int, read: Callable[[int], bytes]) -> bytes | Answer:
    """The body, read with ``read(n)`` only once ``content_length`` is within ``max_bytes``; else the answer
    refusing it: 411 without a usable length, 413 naming the limit, 400 when fewer bytes arrive than announced."""
    if content_length is None or not content_length.strip().isdigit():
        return _refusal(HTTPStatus.LENGTH_REQUIRED, "Content-Length is required")
    length = int(content_length)
    if length > max_bytes:
        return _refusal(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"request body is {length} bytes; this endpoint accepts at most {max_bytes} ({MAX_BODY_BYTES_ENV})",
        )
    body = read(length) if length else b""
    if len(body) != length:
        return _refusal(HTTPStatus.BAD_REQUEST, f"request body ended after {len(body)} of {length} bytes")
    return body


def binary_header_length(content_type: str | None, header: str | None) -> str | None:
    """A binary tensor body's JSON header length, as ``Inference-Header-Content-Length`` gives it or, through
    SageMaker (which passes only the content type on), Triton's ``json-header-size`` content type parameter."""
    if header is not None:
        return header
    for parameter in (content_type or "").split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == JSON_HEADER_SIZE:
            return value
    return None
