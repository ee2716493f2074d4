"""The last-good cache behind ``fallback: last_good``: the most recent successful answer per (model,
question), answered (marked degraded) when the endpoint cannot answer the same question now.

Bounded in bytes, not only in entries: an answer echoes the caller's ``id``, which a caller may make a
megabyte long, so the ``id`` is stripped before an answer is cached (the fallback puts the current request's
``id`` back), an answer over ``max_answer_bytes`` is not cached at all, and the least recently used answers go
first once the cached bytes pass ``max_bytes``.

Example:
    >>> cache = LastGoodCache(max_bytes=64 * 1024 * 1024, max_age_s=3600)
    >>> cache.put(last_good_key(request), answer)
    >>> cache.get(last_good_key(request)) == answer_without_its_id
    True
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from functions.domain.validation import InferRequest

Clock = Callable[[], float]

# The whole cache's default share of a router environment: 1/16 of the default 1,024 MB function. The router
# sizes it from the function's memory instead (functions/config/router_settings.py).
DEFAULT_MAX_BYTES: Final[int] = 64 * 1024 * 1024
# Stripping the id re-encodes the answer on the success path: measured ~8 ms for a 288 KB answer on one core,
# so answers up to 64 KiB (~2 ms) are cached; an iris answer is ~200 bytes.
DEFAULT_MAX_ANSWER_BYTES: Final[int] = 64 * 1024
# What an entry costs beyond its answer's bytes: the 64-character key, the tuple, the float, the bytes header
# and the OrderedDict's slot and links (measured with tracemalloc: ~300 bytes; rounded up).
ENTRY_OVERHEAD_BYTES: Final[int] = 400


def last_good_key(request: InferRequest) -> str:
    """The version and the inputs and requested outputs, canonical: the same question to the same version gets
    the same cached answer (another version's answer is not this one's to give)."""
    canonical = json.dumps({"inputs": request.document.get("inputs"), "outputs": list(request.requested_outputs)},
                           sort_keys=True, separators=(",", ":"))  # fmt: skip
    return LastGoodCache.key(f"{request.model.name}\0{request.model.version}", canonical.encode())


def without_request_id(answer: bytes) -> bytes | None:
    """The answer with its ``id`` removed (it names another caller's request), or None if it is not a JSON
    object (nothing a fallback could answer with)."""
    try:
        document = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    if "id" not in document:
        return answer
    del document["id"]
    return json.dumps(document, separators=(",", ":")).encode()


@dataclass
class LastGoodCache:
    """The most recent successful answer per (model, input), without its ``id``; bounded in entries and in
    bytes (least recently used goes first) and in age (an entry older than ``max_age_s`` is never answered).

    Example:
        >>> cache = LastGoodCache(max_bytes=1024 * 1024, max_age_s=3600)
        >>> key = LastGoodCache.key("iris", canonical_inputs)
        >>> cache.put(key, b'{"id":"q1","outputs":[]}')
        >>> cache.get(key)
        b'{"outputs":[]}'
    """

    max_entries: int = 1000
    max_age_s: float = 3600.0
    max_bytes: int = DEFAULT_MAX_BYTES
    max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES
    clock: Clock = time.monotonic
    _entries: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_age_s <= 0:
            raise ValueError("max_entries must be at least 1 and max_age_s positive")
        if self.max_answer_bytes < 1 or self.max_answer_bytes + ENTRY_OVERHEAD_BYTES > self.max_bytes:
            raise ValueError("max_answer_bytes must be positive and an entry of that size must fit in max_bytes")

    @staticmethod
    def key(model: str, canonical_inputs: bytes) -> str:
        return hashlib.sha256(model.encode() + b"\0" + canonical_inputs).hexdigest()

    @property
    def size_bytes(self) -> int:
        """What the cached entries cost, overhead included: never above ``max_bytes``."""
        return self._bytes

    def put(self, key: str, answer: bytes) -> None:
        """Cache ``answer`` without its ``id``; an answer over ``max_answer_bytes`` or not a JSON object is
        skipped (an older answer to the same question stays)."""
        if len(answer) > self.max_answer_bytes:
            return
        stripped = without_request_id(answer)
        if stripped is None:
            return
        with self._lock:
            self._discard(key)
            self._entries[key] = (self.clock(), stripped)
            self._bytes += _cost(stripped)
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._discard(next(iter(self._entries)))

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, answer = entry
            if self.clock() - stored_at > self.max_age_s:
                self._discard(key)
                return None
            self._entries.move_to_end(key)
            return answer

    def _discard(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= _cost(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


def _cost(answer: bytes) -> int:
    return len(answer) + ENTRY_OVERHEAD_BYTES
