"""A serverless endpoint's containers, as SageMaker serverless (and the capacity planner's simulation,
``ops.planner.serverless``) model them: a call takes an idle warm container, else starts a new one (a cold
start) while fewer than ``max_concurrency`` exist, else is throttled; an on-demand container idle longer than
``keep_warm_s`` retires; provisioned containers start warm and never retire.

An idle provisioned container is taken first (provisioned concurrency serves before on-demand capacity, as
AWS routes it), then the on-demand container that went idle last, so the least used ones are the ones that
retire.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Final

CONTAINER_FIELDS: Final[frozenset[str]] = frozenset({"keep_warm_s", "provisioned"})


class ContainerSpecError(ValueError):
    """A container pool spec with an unknown field or an impossible value."""


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """``keep_warm_s``: how long an idle on-demand container stays warm; ``provisioned``: containers that are
    warm from the start and never retire (provisioned concurrency)."""

    keep_warm_s: float
    provisioned: int = 0

    def __post_init__(self) -> None:
        keep = self.keep_warm_s
        if isinstance(keep, bool) or not isinstance(keep, int | float) or keep <= 0:
            raise ContainerSpecError(f"containers.keep_warm_s {keep!r} must be a positive number of seconds")
        count = self.provisioned
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ContainerSpecError(f"containers.provisioned {count!r} must be a whole number, 0 or more")

    @classmethod
    def from_json(cls, document: Any) -> ContainerSpec:
        if not isinstance(document, dict) or "keep_warm_s" not in document:
            raise ContainerSpecError('containers is an object like {"keep_warm_s": 600, "provisioned": 0}')
        unknown = set(document) - CONTAINER_FIELDS
        if unknown:
            raise ContainerSpecError(f"unknown containers field {sorted(unknown)[0]!r}")
        return cls(**document)


@dataclass(frozen=True, slots=True)
class Container:
    """The container one call runs on: whether it is provisioned, and whether the call started it (cold)."""

    provisioned: bool
    cold: bool


class ContainerPool:
    """One endpoint's containers and what they did: cold starts and throttles since the pool was set up."""

    def __init__(self, spec: ContainerSpec, max_concurrency: int | None) -> None:
        self.spec = spec
        self.max_concurrency = max_concurrency
        self._lock = threading.Lock()
        self._idle_provisioned = spec.provisioned
        self._idle_since: list[float] = []  # idle on-demand containers, by when they went idle (oldest first)
        self._busy_on_demand = 0
        self.cold_starts = 0
        self.throttles = 0

    def acquire(self, now: float) -> Container | None:
        """A container for a call arriving ``now``, or None: throttled."""
        with self._lock:
            self._retire(now)
            if self._idle_provisioned:
                self._idle_provisioned -= 1
                return Container(provisioned=True, cold=False)
            if self._idle_since:
                self._idle_since.pop()
                self._busy_on_demand += 1
                return Container(provisioned=False, cold=False)
            if self.max_concurrency is not None and self._total() >= self.max_concurrency:
                self.throttles += 1
                return None
            self._busy_on_demand += 1
            self.cold_starts += 1
            return Container(provisioned=False, cold=True)

    def release(self, container: Container, now: float) -> None:
        """The call on ``container`` is over: the container is idle from ``now``."""
        with self._lock:
            if container.provisioned:
                self._idle_provisioned += 1
            else:
                self._busy_on_demand -= 1
                self._idle_since.append(now)

    def stats(self, now: float) -> dict[str, int]:
        with self._lock:
            self._retire(now)
            idle = self._idle_provisioned + len(self._idle_since)
            return {"containers": self._total(), "idle": idle, "provisioned": self.spec.provisioned,
                    "cold_starts": self.cold_starts, "throttles": self.throttles}  # fmt: skip

    def _retire(self, now: float) -> None:
        keep = self.spec.keep_warm_s
        self._idle_since = [since for since in self._idle_since if now - since <= keep]

    def _total(self) -> int:
        return self.spec.provisioned + self._busy_on_demand + len(self._idle_since)
