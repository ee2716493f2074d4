"""Caller values quoted in error messages, clipped: an error body stays small (Lambda refuses a response over
6 MB, so an unclipped 4.4 MB ``datatype`` echoed in a 400 became a 502) and a log line carries no request data
beyond the clip.

Example:
    >>> clip("x" * 100, 8)
    "'xxxxxxxx'… (100 characters)"
"""

from __future__ import annotations

import json
import reprlib
from bisect import bisect_right
from itertools import accumulate
from typing import Final

ECHO_LIMIT: Final[int] = 64
# What any error message may hold once JSON-escaped, whatever it quotes: the 400 body stays under ~1 KB.
MAX_ERROR_MESSAGE: Final[int] = 900

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict = 2, 8, 8, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = ECHO_LIMIT


def clip(value: object, limit: int = ECHO_LIMIT, *, quote: bool = True) -> str:
    """``repr(value)`` (``str`` for a string when ``quote`` is false) of at most about ``limit`` characters;
    a cut string says how long it was."""
    if isinstance(value, str):
        shown = repr(value[:limit]) if quote else value[:limit]
        return shown if len(value) <= limit else f"{shown}… ({len(value)} characters)"
    text = _REPR.repr(value)
    return text if len(text) <= limit else f"{text[:limit]}…"


def clip_message(message: str) -> str:
    """An error message cut to :data:`MAX_ERROR_MESSAGE` characters of JSON (a last bound: values are clipped
    first). Counted as the error body writes them (``json.dumps``, ASCII only): a control or non-ASCII character
    takes 6 there and an astral one 12, so a 64-character clip of emoji alone is 768 bytes."""
    if len(json.dumps(message)) - 2 <= MAX_ERROR_MESSAGE:
        return message
    # Every character takes at least one: the first MAX_ERROR_MESSAGE of them hold the cut.
    widths = accumulate(len(json.dumps(character)) - 2 for character in message[:MAX_ERROR_MESSAGE])
    kept = bisect_right(list(widths), MAX_ERROR_MESSAGE)
    return f"{message[:kept]}… ({len(message)} characters)"
