"""The last-good cache behind ``fallback: last_good``: the most recent successful answer per (model,
question), answered (marked degraded) when the endpoint cannot answer the same question now.

Example:
    >>> cache = LastGoodCache(max_entries=1000, max_age_s=3600)
    >>> cache.put(last_good_key(request), answer)
    >>> cache.get(last_good_key(request)) == answer
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

from functions.domain.validation import InferRequest

Clock = Callable[[], float]


def last_good_key(request: InferRequest) -> str:
    """The inputs and requested outputs, canonical: the same question gets the same cached answer."""
    canonical = json.dumps({"inputs": request.document.get("inputs"), "outputs": list(request.requested_outputs)},
                           sort_keys=True, separators=(",", ":"))  # fmt: skip
    return LastGoodCache.key(request.model.name, canonical.encode())


@dataclass
class LastGoodCache:
    """The most recent successful answer per (model, input), bounded in size (least recently used goes
    first) and age (an entry older than ``max_age_s`` is never answered).

    Example:
        >>> cache = LastGoodCache(max_entries=1000, max_age_s=3600)
        >>> key = LastGoodCache.key("iris", canonical_inputs)
        >>> cache.put(key, answer)
        >>> cache.get(key) == answer
        True
    """

    max_entries: int = 1000
    max_age_s: float = 3600.0
    clock: Clock = time.monotonic
    _entries: OrderedDict[str, tuple[float, bytes]] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if self.max_entries < 1 or self.max_age_s <= 0:
            raise ValueError("max_entries must be at least 1 and max_age_s positive")

    @staticmethod
    def key(model: str, canonical_inputs: bytes) -> str:
        return hashlib.sha256(model.encode() + b"\0" + canonical_inputs).hexdigest()

    def put(self, key: str, answer: bytes) -> None:
        with self._lock:
            self._entries[key] = (self.clock(), answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def get(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            stored_at, answer = entry
            if self.clock() - stored_at > self.max_age_s:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return answer

    def __len__(self) -> int:
        return len(self._entries)
