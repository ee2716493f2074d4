"""A request body read off an HTTP/1.1 connection the way API Gateway reads it: by ``Content-Length`` or, for
``Transfer-Encoding: chunked`` (RFC 9112, section 7.1), chunk by chunk, trailers dropped, up to a limit.

A body that cannot be read whole leaves the connection at an unknown place in the stream: the caller answers
the :class:`BodyRefusedError` error and closes the connection, so the next request cannot start mid-body.

    >>> read_request_body(handler.headers, handler.rfile, limit=10 * 1024 * 1024)
    b'{"inputs": [...]}'
"""

from __future__ import annotations

import re
from email.message import Message
from io import BufferedIOBase
from typing import Final

# The longest chunk-size line (size and extensions) or trailer line read; no honest client comes near it.
MAX_LINE_BYTES: Final[int] = 8192
MAX_TRAILER_LINES: Final[int] = 100
CHUNK_SIZE: Final[re.Pattern[bytes]] = re.compile(rb"[0-9A-Fa-f]{1,15}")
CONTENT_LENGTH: Final[re.Pattern[str]] = re.compile(r"[0-9]{1,15}")


class BodyRefusedError(Exception):
    """A body not read: ``status`` and ``message`` are API Gateway's answer for it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def too_large() -> BodyRefusedError:
    """API Gateway's REQUEST_TOO_LARGE (its payload quota): 413 "Request Too Long"."""
    return BodyRefusedError(413, "Request Too Long")


def read_request_body(headers: Message, rfile: BufferedIOBase, limit: int) -> bytes:
    """The whole body, or :class:`BodyRefusedError` (over ``limit``, a malformed framing or a truncated body)."""
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        # RFC 9112 6.3: with Transfer-Encoding, Content-Length is ignored; chunked must be the final coding.
        codings = [coding.strip().lower() for coding in encoding.split(",")]
        if codings != ["chunked"]:
            raise BodyRefusedError(400, f"Transfer-Encoding {encoding[:64]!r} is not supported (only 'chunked')")
        return _read_chunked(rfile, limit)
    raw_length = (headers.get("Content-Length") or "0").strip()
    if not CONTENT_LENGTH.fullmatch(raw_length):
        raise BodyRefusedError(400, f"Content-Length {raw_length[:64]!r} is not a number of bytes")
    length = int(raw_length)
    if length > limit:
        raise too_large()
    body = rfile.read(length) if length else b""
    if len(body) != length:
        raise BodyRefusedError(400, f"the body ended after {len(body)} of its {length} bytes")
    return body


def _read_chunked(rfile: BufferedIOBase, limit: int) -> bytes:
    body = bytearray()
    while True:
        line = _line(rfile, "a chunk size")
        size_text = line.split(b";", 1)[0].strip()
        if not CHUNK_SIZE.fullmatch(size_text):
            raise BodyRefusedError(400, f"chunk size {size_text[:32]!r} is not a hexadecimal number")
        size = int(size_text, 16)
        if size == 0:
            break
        if len(body) + size > limit:
            raise too_large()
        chunk = rfile.read(size)
        if len(chunk) != size or rfile.read(2) != b"\r\n":
            raise BodyRefusedError(400, f"a chunk of {size} bytes ended early or without its CRLF")
        body += chunk
    for _ in range(MAX_TRAILER_LINES):
        if _line(rfile, "a trailer") in (b"\r\n", b"\n"):
            return bytes(body)
    raise BodyRefusedError(400, f"more than {MAX_TRAILER_LINES} trailer lines")


def _line(rfile: BufferedIOBase, what: str) -> bytes:
    line = rfile.readline(MAX_LINE_BYTES + 1)
    if not line.endswith(b"\n"):
        reason = "ended" if len(line) <= MAX_LINE_BYTES else f"is over {MAX_LINE_BYTES} bytes"
        raise BodyRefusedError(400, f"the chunked body {reason} in {what} line")
    return line
