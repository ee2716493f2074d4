"""What the router reads from an API Gateway event besides its path: the body's bytes and the caller's
``Prefer`` header (RFC 7240)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from functions.domain.echo import clip
from functions.domain.errors import InvalidRequestError
from functions.handlers.router.responses import RESPOND_ASYNC


def prefers_async(prefer: str) -> bool:
    """RFC 7240: whether the ``Prefer`` header holds ``respond-async`` (among other preferences or not; a
    preference may carry a value after '=' and parameters after ';', as in ``respond-async; wait=5``)."""
    return any(token.split(";")[0].split("=")[0].strip().lower() == RESPOND_ASYNC for token in prefer.split(","))


def request_body(event: dict[str, Any]) -> bytes:
    """The body's bytes; a body no client could have sent through API Gateway (a direct invoke's) is a 400."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise InvalidRequestError(f"the event's body must be a string, got {type(body).__name__}")
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidRequestError(f"the body is marked base64 but is not base64: {clip(str(error))}") from None
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidRequestError(
            f"the body holds a lone surrogate at character {error.start}: not Unicode text, not UTF-8"
        ) from None
