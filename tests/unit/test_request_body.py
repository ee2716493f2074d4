"""The container's request body bound: where it comes from, and that a body over it is refused unread."""

from __future__ import annotations

import json

import pytest

from functions.config.limits import ASYNC_MAX_INPUT_BYTES, LAMBDA_MAX_BODY_BYTES
from serving.request_body import BodyLimitError, body_or_refusal, max_body_bytes_from_environ
from serving.service import Answer


def never_read(size: int) -> bytes:
    raise AssertionError(f"the body was read ({size} bytes) although it should have been refused first")


def test_the_default_bound_is_the_routers_lambda_payload_limit() -> None:
    assert max_body_bytes_from_environ({}) == LAMBDA_MAX_BODY_BYTES
    assert max_body_bytes_from_environ({"SERVING_MAX_BODY_BYTES": ""}) == LAMBDA_MAX_BODY_BYTES


@pytest.mark.parametrize("value", ["4194304", "26214400", str(ASYNC_MAX_INPUT_BYTES)])
def test_the_bound_comes_from_the_environment_up_to_the_async_input_limit(value: str) -> None:
    assert max_body_bytes_from_environ({"SERVING_MAX_BODY_BYTES": value}) == int(value)


@pytest.mark.parametrize("value", ["0", "-1", "4MB", "1.5", str(ASYNC_MAX_INPUT_BYTES + 1)])
def test_a_bound_sagemaker_could_not_deliver_is_refused(value: str) -> None:
    with pytest.raises(BodyLimitError, match=f"from 1 to {ASYNC_MAX_INPUT_BYTES}"):
        max_body_bytes_from_environ({"SERVING_MAX_BODY_BYTES": value})


def test_a_body_over_the_bound_is_refused_with_413_naming_the_limit_without_being_read() -> None:
    refusal = body_or_refusal("1025", 1024, never_read)
    assert isinstance(refusal, Answer)
    assert refusal.status == 413
    assert json.loads(refusal.body) == {
        "error": "request body is 1025 bytes; this endpoint accepts at most 1024 (SERVING_MAX_BODY_BYTES)"
    }


@pytest.mark.parametrize("header", [None, "", "chunked", "-5"])
def test_a_body_without_a_usable_length_is_refused_with_411_unread(header: str | None) -> None:
    refusal = body_or_refusal(header, 1024, never_read)
    assert isinstance(refusal, Answer)
    assert (refusal.status, json.loads(refusal.body)) == (411, {"error": "Content-Length is required"})


def test_a_body_within_the_bound_is_read_exactly_once_for_its_length() -> None:
    reads: list[int] = []

    def read(size: int) -> bytes:
        reads.append(size)
        return b"x" * size

    assert body_or_refusal("1024", 1024, read) == b"x" * 1024
    assert reads == [1024]
    assert body_or_refusal("0", 1024, never_read) == b""


def test_a_body_shorter_than_announced_is_a_400() -> None:
    refusal = body_or_refusal("10", 1024, lambda size: b"abc")
    assert isinstance(refusal, Answer)
    assert (refusal.status, json.loads(refusal.body)) == (400, {"error": "request body ended after 3 of 10 bytes"})
