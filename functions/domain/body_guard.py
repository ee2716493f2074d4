"""The request body read as JSON only after its bytes are known to be safe and unambiguous to parse.

Before ``json.loads`` runs: UTF-8 without a byte order mark (RFC 8259 section 8.1: JSON exchanged between
systems), no lone surrogate escape (a model server may read ``"\\ud800"`` differently, or not at all), at
most :data:`MAX_NESTING_DEPTH` levels and :data:`MAX_CONTAINERS` lists and objects. Both bounds are found by
a linear scan in C (``bytes.replace``, ``translate``, ``split``: the brackets outside strings), because
``json.loads`` itself recurses per level (about 1,000 levels raise ``RecursionError``) and builds every
container before any check could run: 6 MiB of ``[],`` is two million lists, ~250 MB. While parsing,
a JSON object with the same key twice is refused (the last one would win here, maybe the first elsewhere).

Example:
    >>> parse_json_body(b'{"inputs": []}')
    {'inputs': []}
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any, Final

from functions.domain.echo import clip
from functions.domain.errors import InvalidRequestError

# An OIP request nests 4 levels around a tensor's data (request, inputs, input, data) plus one per dimension
# of nested row-major data; 32 leaves rank 28 and stays far below json's own recursion failure (~1,000).
MAX_NESTING_DEPTH: Final[int] = 32
# Lists and objects in one body. A nested [1, 224, 224, 3] image is 50,401 lists; flat data is one list
# whatever its size, and larger tensors can always be sent flat. 100,000 empty containers cost ~9 MB parsed.
MAX_CONTAINERS: Final[int] = 100_000
# Object members in one body: an OIP request has a handful per object (an input has 5); json.loads builds
# every member of a 6 MiB object of one-character keys (1 million of them) in ~0.5 s before any check.
MAX_KEYS: Final[int] = 10_000
BOM: Final[bytes] = b"\xef\xbb\xbf"
RFC_8259: Final[str] = "JSON between systems is UTF-8 without a byte order mark (RFC 8259, section 8.1)"

# What the structure scan keeps of a body once escapes are gone: brackets, colons and commas, and quotes to
# tell strings apart.
_MARKS: Final[bytes] = b'[]{}:,"'
_NOT_MARKS: Final[bytes] = bytes(byte for byte in range(256) if byte not in _MARKS)
# Strings are cut out of the marks in slices, so that a body of a million short strings holding marks
# costs a slice's worth of pieces at a time, not a million objects at once.
_SLICE: Final[int] = 64 * 1024
_DEPTH_STEP: Final[tuple[int, ...]] = tuple(1 if byte in b"[{" else -1 for byte in range(256))
_SURROGATE_PAIR: Final[re.Pattern[bytes]] = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
_SURROGATE: Final[re.Pattern[bytes]] = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def parse_json_body(body: bytes, max_items: int | None = None) -> Any:
    """``body`` parsed, or :class:`InvalidRequestError` naming what makes it unsafe or ambiguous.

    ``max_items``: at most that many list items and object members in all (what a model's signature allows,
    see :func:`functions.domain.validation.max_items`), so a body of a million numbers for a model that
    takes at most 4,000 is refused before ``json.loads`` turns it into objects."""
    if not body:
        raise InvalidRequestError("request body is empty; expected an Open Inference Protocol JSON object")
    text = decode_utf8(body)
    check_structure(body, max_items)
    check_surrogates(body)
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except ValueError as error:  # JSONDecodeError, or an integer over Python's digit limit
        raise InvalidRequestError(f"request body is not valid JSON: {clip(str(error), 200, quote=False)}") from error


def decode_utf8(body: bytes) -> str:
    if body.startswith(BOM):
        raise InvalidRequestError(f"request body starts with a UTF-8 byte order mark; {RFC_8259}")
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body:
        # NUL is never valid in JSON text; a UTF-16 or UTF-32 body of ASCII text is full of them.
        raise InvalidRequestError(f"request body looks like UTF-16 or UTF-32 (NUL bytes); {RFC_8259}")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequestError(
            f"request body is not UTF-8 (byte {error.start}: {error.reason}); {RFC_8259}"
        ) from error


def check_structure(body: bytes, max_items: int | None = None) -> None:
    """At most :data:`MAX_CONTAINERS` lists and objects, :data:`MAX_KEYS` object members, ``max_items``
    items and members in all, nested at most :data:`MAX_NESTING_DEPTH` deep."""
    marks = _outside_strings(_without_escapes(body).translate(None, _NOT_MARKS))
    brackets = marks.translate(None, b":,")
    opened = brackets.count(b"[") + brackets.count(b"{")
    if opened > MAX_CONTAINERS:
        raise InvalidRequestError(
            f"request body has {opened} lists and objects; at most {MAX_CONTAINERS} (send large tensors' data flat)"
        )
    if len(brackets) != 2 * opened:
        raise InvalidRequestError("request body is not valid JSON: its brackets do not balance")
    depth = max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)
    if depth > MAX_NESTING_DEPTH:
        raise InvalidRequestError(
            f"request body nests {depth} levels of lists and objects; at most {MAX_NESTING_DEPTH}"
        )
    keys = marks.count(b":")
    if keys > MAX_KEYS:
        raise InvalidRequestError(f"request body has {keys} object members; at most {MAX_KEYS}")
    # Each comma separates two items or members: a container of n holds n - 1 of them, an empty one none.
    separators = marks.count(b",")
    if max_items is not None and separators > max_items:
        raise InvalidRequestError(
            f"request body has more than {separators} list items and object members; the model's inputs "
            f"take at most {max_items}"
        )


def check_surrogates(body: bytes) -> None:
    """No ``\\uD800``-``\\uDFFF`` escape outside a high-low pair: such a string is not Unicode text."""
    if b"\\u" not in body:
        return
    # Escaped backslashes first, so that every backslash left starts an escape ("\\\\ud800" is not one).
    escapes = _SURROGATE_PAIR.sub(b"", body.replace(b"\\\\", b""))
    lone = _SURROGATE.search(escapes)
    if lone is not None:
        raise InvalidRequestError(
            f"request body escapes a lone surrogate ({lone.group().decode()}): not Unicode text; {RFC_8259}"
        )


def _without_escapes(body: bytes) -> bytes:
    """``body`` without its escaped backslashes and quotes: every quote left opens or closes a string."""
    return body.replace(b"\\\\", b"").replace(b'\\"', b"")


def _outside_strings(marks: bytes) -> bytes:
    """The marks (brackets, colons, commas) of ``marks`` (those and quotes, in body order) outside strings."""
    # Two adjacent quotes have no mark between them: an empty string or the gap between two strings,
    # dropped either way without moving any mark in or out of a string. Most bodies end here.
    marks = marks.replace(b'""', b"")
    if b'"' not in marks:
        return marks
    kept: list[bytes] = []
    inside = False
    for start in range(0, len(marks), _SLICE):
        pieces = marks[start : start + _SLICE].split(b'"')
        kept.append(b"".join(pieces[1::2] if inside else pieces[0::2]))
        inside ^= len(pieces) % 2 == 0
    return b"".join(kept)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidRequestError(f"request body repeats the key {clip(key)} in one object")
            seen.add(key)
    return document
