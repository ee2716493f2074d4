"""The body guard: what json.loads is never given (too deep, too many containers or members, not UTF-8
without a BOM, lone surrogates) and what it refuses while parsing (a key twice in one object)."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest

from functions.domain.body_guard import MAX_CONTAINERS, MAX_KEYS, MAX_NESTING_DEPTH, parse_json_body
from functions.domain.errors import InvalidRequestError

SIX_MIB = 6 * 1024 * 1024


def refusal(body: bytes, max_items: int | None = None) -> str:
    with pytest.raises(InvalidRequestError) as raised:
        parse_json_body(body, max_items)
    return raised.value.message


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_nesting_past_the_limit_is_refused_naming_the_limit_not_a_recursion_error(opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    body = opener * 10_000 + b"1" + closer * 10_000
    assert f"at most {MAX_NESTING_DEPTH}" in refusal(body)


def test_nesting_at_the_limit_parses() -> None:
    body = b"[" * MAX_NESTING_DEPTH + b"1" + b"]" * MAX_NESTING_DEPTH
    assert json.dumps(parse_json_body(body)).count("[") == MAX_NESTING_DEPTH


def test_brackets_inside_strings_do_not_count() -> None:
    body = json.dumps({"a": ["[[[[{{{{" * 1000, '\\"[[[', "x\\", "]]]}"]}).encode()
    assert parse_json_body(body)["a"][1] == '\\"[[['


def test_an_escaped_quote_does_not_end_a_string() -> None:
    deep = '\\"' + "[" * 100
    assert parse_json_body(json.dumps([deep]).encode()) == [deep]
    # Outside a string those brackets would count: the same text unquoted is refused.
    assert "nests" in refusal(b"[" + b"[" * 100 + b"]" * 101)


def test_too_many_containers_are_refused_before_parsing() -> None:
    body = b"[" + b"[]," * MAX_CONTAINERS + b"[]]"
    assert f"at most {MAX_CONTAINERS}" in refusal(body)
    assert isinstance(parse_json_body(b"[" + b"[]," * (MAX_CONTAINERS - 2) + b"[]]"), list)


def test_too_many_object_members_are_refused() -> None:
    body = b"{" + b",".join(b'"k%d":1' % index for index in range(MAX_KEYS + 1)) + b"}"
    assert f"at most {MAX_KEYS}" in refusal(body)


def test_more_items_than_the_model_takes_are_refused() -> None:
    assert "take at most 10" in refusal(b"[" + b"1," * 20 + b"1]", max_items=10)
    assert parse_json_body(b"[" + b"1," * 10 + b"1]", max_items=10) == [1] * 11


def test_unbalanced_brackets_are_invalid_json() -> None:
    assert "do not balance" in refusal(b"[" * 20 + b"]" * 30)


def test_a_duplicate_key_is_refused_at_any_depth() -> None:
    assert "repeats the key 'id'" in refusal(b'{"id": "a", "inputs": [], "id": "b"}')
    assert "repeats the key 'name'" in refusal(b'{"inputs": [{"name": "x", "name": "y"}]}')


def test_a_duplicate_key_is_clipped_in_the_message() -> None:
    key = "k" * 100_000
    message = refusal(json.dumps({"a": {key: 1}}).replace("}}", f', "{key}": 2}}}}').encode())
    assert len(message) < 200
    assert "(100000 characters)" in message


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"\xef\xbb\xbf{}", "byte order mark"),
        ('{"a": 1}'.encode("utf-16"), "UTF-16 or UTF-32"),
        ('{"a": 1}'.encode("utf-16-le"), "UTF-16 or UTF-32"),
        ('{"a": 1}'.encode("utf-32-be"), "UTF-16 or UTF-32"),
        (b'{"a": "\xe9"}', "not UTF-8"),
        (b'{"a": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded as UTF-8 (CESU)
    ],
)
def test_anything_but_utf8_without_a_bom_is_refused_naming_rfc_8259(body: bytes, named: str) -> None:
    message = refusal(body)
    assert named in message
    assert "RFC 8259" in message


@pytest.mark.parametrize("escape", [b"\\ud800", b"\\uDC00", b"\\ud800x", b"\\ud800\\ud800\\udc00", b"\\\\\\udbff"])
def test_a_lone_surrogate_escape_is_refused(escape: bytes) -> None:
    assert "lone surrogate" in refusal(b'{"a": "' + escape + b'"}')


@pytest.mark.parametrize("escape", [b"\\ud83d\\ude00", b"\\\\ud800", b"\\u00e9"])
def test_a_surrogate_pair_or_an_escaped_backslash_is_fine(escape: bytes) -> None:
    assert parse_json_body(b'{"a": "' + escape + b'"}') == json.loads(b'{"a": "' + escape + b'"}')


def test_invalid_json_is_refused_with_a_clipped_reason() -> None:
    assert "not valid JSON" in refusal(b'{"a": ')
    assert "not valid JSON" in refusal(b"[" + b"9" * 5000 + b"]")  # over Python's integer digit limit
    assert "empty" in refusal(b"")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * SIX_MIB,
        b"[" + b"[]," * (SIX_MIB // 3 - 1) + b"]",
        b"[" + b"{}," * (SIX_MIB // 3 - 1) + b"]",
        b"{" + b'"a":1,' * (SIX_MIB // 6 - 1) + b"}",
        b'["' + b'\\"[' * (SIX_MIB // 3 - 2) + b"]",
    ],
    ids=["open-brackets", "empty-lists", "empty-objects", "duplicate-keys", "unterminated-escaped-string"],
)
def test_the_worst_6_mib_bodies_are_refused_fast_and_small(body: bytes) -> None:
    # Measured ~10-30 ms and ~2x the body here; the bounds leave room for a loaded CI machine.
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(InvalidRequestError):
        parse_json_body(body)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 3 * len(body)
    assert seconds < 1.0
