"""The local API's request body reader: Content-Length and chunked bodies, read to their end and no further,
and every framing it refuses with API Gateway's status."""

from __future__ import annotations

import io
from email.message import Message

import pytest

from local.http_body import MAX_LINE_BYTES, MAX_TRAILER_LINES, BodyRefusedError, read_request_body

LIMIT = 64


def headers(**fields: str) -> Message:
    message = Message()
    for name, value in fields.items():
        message[name.replace("_", "-")] = value
    return message


def read(raw: bytes, **fields: str) -> tuple[bytes, bytes]:
    """The body read, and what the stream still holds after it (the next request's bytes)."""
    stream = io.BytesIO(raw)
    body = read_request_body(headers(**fields), stream, LIMIT)
    return body, stream.read()


def refused(raw: bytes, **fields: str) -> BodyRefusedError:
    with pytest.raises(BodyRefusedError) as caught:
        read_request_body(headers(**fields), io.BytesIO(raw), LIMIT)
    return caught.value


NEXT = b"GET /v2 HTTP/1.1\r\n\r\n"


def test_a_content_length_body_is_read_to_its_end() -> None:
    assert read(b'{"a": 1}' + NEXT, Content_Length="8") == (b'{"a": 1}', NEXT)


def test_no_length_is_an_empty_body() -> None:
    assert read(NEXT) == (b"", NEXT)


def test_a_chunked_body_is_joined_and_the_stream_left_at_the_next_request() -> None:
    raw = b'4\r\n{"a"\r\n5;ext=1\r\n: 1}\n\r\n0\r\n\r\n' + NEXT
    assert read(raw, Transfer_Encoding="chunked") == (b'{"a": 1}\n', NEXT)


def test_chunked_trailers_are_read_and_dropped() -> None:
    raw = b"2\r\nhi\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n" + NEXT
    assert read(raw, Transfer_Encoding="Chunked", Content_Length="999") == (b"hi", NEXT)


def test_upper_case_hex_sizes_are_read() -> None:
    assert read(b"A\r\n0123456789\r\n0\r\n\r\n", Transfer_Encoding="chunked")[0] == b"0123456789"


@pytest.mark.parametrize(
    ("raw", "fields", "status", "message"),
    [
        (b"x" * 65, {"Content_Length": "65"}, 413, "Request Too Long"),
        (b"40\r\n" + b"x" * 64 + b"\r\n1\r\nx\r\n0\r\n\r\n", {"Transfer_Encoding": "chunked"}, 413, "Request Too Long"),
        (b"", {"Content_Length": "-1"}, 400, "Content-Length '-1' is not a number of bytes"),
        (b"", {"Content_Length": "1e3"}, 400, "Content-Length '1e3' is not a number of bytes"),
        (b"abc", {"Content_Length": "8"}, 400, "the body ended after 3 of its 8 bytes"),
        (b"", {"Transfer_Encoding": "gzip, chunked"}, 400, "Transfer-Encoding 'gzip, chunked' is not supported"),
        (b"", {"Transfer_Encoding": "chunked, gzip"}, 400, "Transfer-Encoding 'chunked, gzip' is not supported"),
        (b"0x4\r\nabcd\r\n0\r\n\r\n", {"Transfer_Encoding": "chunked"}, 400, "chunk size b'0x4' is not a hexadecimal number"),
        (b"+4\r\nabcd\r\n0\r\n\r\n", {"Transfer_Encoding": "chunked"}, 400, "chunk size b'+4' is not a hexadecimal number"),
        (b"\r\n", {"Transfer_Encoding": "chunked"}, 400, "chunk size b'' is not a hexadecimal number"),
        (b"4\r\nab", {"Transfer_Encoding": "chunked"}, 400, "a chunk of 4 bytes ended early or without its CRLF"),
        (b"4\r\nabcdXY0\r\n\r\n", {"Transfer_Encoding": "chunked"}, 400, "a chunk of 4 bytes ended early"),
        (b"4", {"Transfer_Encoding": "chunked"}, 400, "the chunked body ended in a chunk size line"),
        (b"1" * (MAX_LINE_BYTES + 2), {"Transfer_Encoding": "chunked"}, 400,
         f"the chunked body is over {MAX_LINE_BYTES} bytes in a chunk size line"),
        (b"0\r\nX: 1\r\n", {"Transfer_Encoding": "chunked"}, 400, "the chunked body ended in a trailer line"),
        (b"0\r\n" + b"X: 1\r\n" * (MAX_TRAILER_LINES + 1), {"Transfer_Encoding": "chunked"}, 400,
         f"more than {MAX_TRAILER_LINES} trailer lines"),
    ],
)  # fmt: skip
def test_a_body_that_cannot_be_read_whole_is_refused(
    raw: bytes, fields: dict[str, str], status: int, message: str
) -> None:
    error = refused(raw, **fields)
    assert (error.status, message in error.message) == (status, True), error.message
