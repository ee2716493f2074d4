"""Resilience policies for the sync path: one retry policy, a circuit breaker per endpoint, and the
last-good cache behind ``fallback: last_good``. Pure Python; clock and randomness come in as values, so
tests drive every transition without sleeping.

Only transient failures are retried (design.md): the endpoint throttling, warming up, failing internally
or unreachable. Never a model error or a refused request: those would fail the same way again. A timeout
is not retried either: it has spent the deadline.

Example:
    >>> policy = RetryPolicy(base_delay_ms=50, max_delay_ms=1000, max_attempts=3)
    >>> breaker = registry.for_endpoint("iris", BreakerSettings())
    >>> if breaker.allow():
    ...     try:
    ...         answer = backend.invoke(...)
    ...     except InferenceError as error:
    ...         breaker.record(error)
    ...         delay = policy.next_delay_ms(attempt, remaining_ms, rng) if is_retryable(error) else None
    ...     else:
    ...         breaker.record_success()
"""

from __future__ import annotations

import hashlib
import math
import random
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final

from functions.domain.errors import EndpointTimeoutError, EndpointUnavailableError

# EndpointUnavailableError reasons that a later attempt may cure: the values of TRANSIENT_ERRORS in
# functions/adapters/sagemaker.py (a unit test keeps the two in step; routing may not import adapters),
# plus the adapter's reason for a refused, reset or half-answered connection.
RETRYABLE_REASONS: Final[frozenset[str]] = frozenset(
    {"model-not-ready", "throttled", "internal-failure", "service-unavailable", "internal-dependency",
     "bad-gateway", "gateway-timeout", "connection-error"}
)  # fmt: skip
# Unavailable, but the deadline is what ran out: another attempt cannot fit.
DEADLINE_REASONS: Final[frozenset[str]] = frozenset({"submit-timeout"})

Clock = Callable[[], float]
# endpoint, old state, new state, why; called outside the breaker's lock, so it may log, emit metrics or
# even read the breaker.
Transition = Callable[[str, str, str, str], None]

_DEFAULT_RNG: Final[random.Random] = random.Random()  # noqa: S311 - jitter, not secrets


class ErrorClass(Enum):
    """What a failed endpoint call means for the retry policy and the circuit breaker."""

    RETRYABLE = "retryable"  # transient: retry while the deadline allows; an endpoint failure
    DEADLINE = "deadline"  # no answer in time: never retried (the budget is spent); an endpoint failure
    FINAL = "final"  # the endpoint answered with a refusal or a model error, or we never called it

    @property
    def retryable(self) -> bool:
        return self is ErrorClass.RETRYABLE

    @property
    def endpoint_failure(self) -> bool:
        """Whether the call counts against the endpoint's circuit breaker."""
        return self is not ErrorClass.FINAL


def classify(error: BaseException) -> ErrorClass:
    """The class of an error raised by a backend call.

    ``ModelFailedError``, ``InvalidRequestError``, ``EndpointRejectedError``, ``PayloadTooLargeError`` and
    anything unknown are FINAL: they would fail the same way again, and they say nothing against the
    endpoint's health. So is an ``EndpointUnavailableError`` raised without calling the endpoint
    (``circuit-open``, ``async-not-configured``).
    """
    if isinstance(error, EndpointTimeoutError):
        return ErrorClass.DEADLINE
    if isinstance(error, EndpointUnavailableError):
        if error.reason in RETRYABLE_REASONS:
            return ErrorClass.RETRYABLE
        if error.reason in DEADLINE_REASONS:
            return ErrorClass.DEADLINE
    return ErrorClass.FINAL


def is_retryable(error: BaseException) -> bool:
    return classify(error).retryable


def retry_after_seconds(*, backoff_ms: float | None = None, cooldown_left_s: float | None = None) -> int:
    """The ``Retry-After`` for a 429/503: the longer of the next backoff and the breaker's remaining
    cooldown, rounded up to whole seconds (the header has no fractions), at least 1 (0 invites a storm).

    Example:
        >>> retry_after_seconds(backoff_ms=200)
        1
        >>> retry_after_seconds(backoff_ms=200, cooldown_left_s=4.2)
        5
    """
    wait_s = max((backoff_ms or 0.0) / 1000.0, cooldown_left_s or 0.0)
    return max(1, math.ceil(wait_s))


@dataclass(frozen=True)
class RetryPolicy:
    """Full-jitter exponential backoff, and only while another attempt still fits in the deadline.

    Attempts are 0-based: after attempt 0 fails, ``next_delay_ms(0, ...)`` says how long to wait before
    attempt 1, or None to stop and answer now.

    Example:
        >>> policy = RetryPolicy(base_delay_ms=50, max_delay_ms=800, max_attempts=3)
        >>> policy.next_delay_ms(0, remaining_ms=5_000, rng=random.Random(1))
        7
        >>> policy.next_delay_ms(2, remaining_ms=5_000, rng=random.Random(1)) is None  # third attempt was the last
        True
    """

    base_delay_ms: float = 50.0
    max_delay_ms: float = 1_000.0
    max_attempts: int = 3
    min_attempt_ms: float = 250.0  # an attempt with less time than this would only time out

    def __post_init__(self) -> None:
        if self.base_delay_ms < 0 or self.max_delay_ms < 0:
            raise ValueError("retry delays must not be negative")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts {self.max_attempts} must be at least 1")

    def ceiling_ms(self, attempt: int) -> float:
        """The upper bound of the backoff after ``attempt`` failed: base * 2**attempt, capped."""
        # min() first on the exponent keeps 2**attempt from overflowing a float for absurd attempt counts.
        return min(self.max_delay_ms, self.base_delay_ms * 2.0 ** min(attempt, 64))

    def delay_ms(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform in [0, ceiling]."""
        return (rng or _DEFAULT_RNG).uniform(0.0, self.ceiling_ms(attempt))

    def next_delay_ms(
        self,
        attempt: int,
        remaining_ms: float,
        rng: random.Random | None = None,
        *,
        min_attempt_ms: float | None = None,
    ) -> int | None:
        """The pause before attempt ``attempt + 1`` (0-based ``attempt`` just failed), or None: stop now.

        None when the attempts are used up, or when after the pause less than ``min_attempt_ms`` (default:
        the policy's) would be left of ``remaining_ms`` for the next attempt: it could only time out.
        """
        if attempt + 1 >= self.max_attempts:
            return None
        delay = math.ceil(self.delay_ms(attempt, rng))
        floor = self.min_attempt_ms if min_attempt_ms is None else min_attempt_ms
        if remaining_ms - delay < floor:
            return None
        return delay

    def retry_after_s(self, attempt: int) -> int:
        """What a caller should wait after ``attempt`` failed: the next backoff's upper bound, in whole seconds."""
        return retry_after_seconds(backoff_ms=self.ceiling_ms(attempt))


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


CLOSED: Final[str] = BreakerState.CLOSED
OPEN: Final[str] = BreakerState.OPEN
HALF_OPEN: Final[str] = BreakerState.HALF_OPEN


@dataclass(frozen=True)
class BreakerSettings:
    failure_threshold: int = 5  # consecutive endpoint failures that open the circuit
    failure_rate: float = 0.5  # or at least this share of failures within the window...
    window_s: float = 30.0
    min_calls: int = 10  # ...once the window holds at least this many calls
    cooldown_s: float = 10.0
    # A probe whose outcome never comes back (its caller crashed) frees the half-open slot after this long,
    # so the breaker cannot stay half-open, refusing everyone, forever.
    probe_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1 or self.min_calls < 1:
            raise ValueError("failure_threshold and min_calls must be at least 1")
        if not 0.0 < self.failure_rate <= 1.0:
            raise ValueError(f"failure_rate {self.failure_rate} must be a fraction in (0, 1]")
        if self.window_s <= 0 or self.cooldown_s < 0 or self.probe_timeout_s <= 0:
            raise ValueError("window_s and probe_timeout_s must be positive, cooldown_s not negative")


class CircuitBreaker:
    """Per endpoint and per Lambda environment: closed -> open -> (cooldown) -> half-open -> closed | open.

    Closed: every call goes through; ``failure_threshold`` consecutive endpoint failures, or a failure
    share of at least ``failure_rate`` over the last ``window_s`` (once it holds ``min_calls`` calls), open
    it. Open: calls are refused at once until ``cooldown_s`` has passed. Half-open: exactly one caller, the
    probe, goes through; the others are refused while it is out. Its success closes the circuit, its
    failure opens it again for a new cooldown.

    Outcomes reported while open (calls let through before it opened) change nothing; the first outcome
    reported while half-open decides the probe.

    Example:
        >>> breaker = CircuitBreaker("iris", BreakerSettings(failure_threshold=2, cooldown_s=10), clock=clock)
        >>> breaker.record_failure(); breaker.record_failure()
        >>> breaker.state, breaker.allow(), breaker.retry_after_s
        ('open', False, 10)
    """

    def __init__(
        self,
        endpoint: str,
        settings: BreakerSettings | None = None,
        clock: Clock = time.monotonic,
        on_transition: Transition | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings or BreakerSettings()
        self.clock = clock
        self.on_transition = on_transition
        self._state = BreakerState.CLOSED
        self._consecutive = 0
        self._calls: deque[tuple[float, bool]] = deque()  # (when, failed) within the window
        self._failures_in_window = 0
        self._opened_at = 0.0
        self._probe_started: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        """The state as of now: an open circuit whose cooldown has passed reads as half-open."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def retry_after_s(self) -> int:
        """Seconds until the circuit lets a call through again (the cooldown left), at least 1."""
        with self._lock:
            left = self._opened_at + self.settings.cooldown_s - self.clock() if self._state is BreakerState.OPEN else 0
        return retry_after_seconds(cooldown_left_s=left)

    def allow(self) -> bool:
        """Whether this call may go to the endpoint. A True in half-open makes the caller the probe: it must
        report its outcome (``record_success``, ``record_failure`` or ``record``)."""
        transitions: list[tuple[str, str, str]] = []
        with self._lock:
            allowed = self._allow(transitions)
        self._announce(transitions)
        return allowed

    def record_success(self) -> None:
        transitions: list[tuple[str, str, str]] = []
        with self._lock:
            if self._state is BreakerState.CLOSED:
                self._consecutive = 0
                self._remember(failed=False)
            elif self._state is BreakerState.HALF_OPEN:
                self._close(transitions)
        self._announce(transitions)

    def record_failure(self) -> None:
        transitions: list[tuple[str, str, str]] = []
        with self._lock:
            if self._state is BreakerState.CLOSED:
                self._consecutive += 1
                self._remember(failed=True)
                calls = len(self._calls)
                if self._consecutive >= self.settings.failure_threshold:
                    self._open(f"{self._consecutive} consecutive endpoint failures", transitions)
                elif (
                    calls >= self.settings.min_calls and self._failures_in_window >= self.settings.failure_rate * calls
                ):
                    self._open(
                        f"{self._failures_in_window} of {calls} calls in {self.settings.window_s:g} s failed",
                        transitions,
                    )
            elif self._state is BreakerState.HALF_OPEN:
                self._open("probe failed", transitions)
        self._announce(transitions)

    def record(self, error: BaseException | None) -> None:
        """Report a call's outcome: None for an answer, else the error it raised, classified by
        :func:`classify`. A FINAL error neither counts for nor against the endpoint; it frees the probe slot
        so the next caller probes instead."""
        if error is None:
            self.record_success()
        elif classify(error).endpoint_failure:
            self.record_failure()
        else:
            with self._lock:
                self._probe_started = None

    def _allow(self, transitions: list[tuple[str, str, str]]) -> bool:
        if self._state is BreakerState.CLOSED:
            return True
        now = self.clock()
        if self._state is BreakerState.OPEN:
            if not self._cooled_down():
                return False
            self._move(BreakerState.HALF_OPEN, "cooldown over: one probe goes through", transitions)
        if self._probe_started is not None and now - self._probe_started < self.settings.probe_timeout_s:
            return False
        self._probe_started = now
        return True

    def _cooled_down(self) -> bool:
        return self.clock() >= self._opened_at + self.settings.cooldown_s

    def _remember(self, *, failed: bool) -> None:
        now = self.clock()
        self._calls.append((now, failed))
        self._failures_in_window += failed
        horizon = now - self.settings.window_s
        while self._calls and self._calls[0][0] <= horizon:
            _, old_failed = self._calls.popleft()
            self._failures_in_window -= old_failed

    def _open(self, why: str, transitions: list[tuple[str, str, str]]) -> None:
        self._opened_at = self.clock()
        self._probe_started = None
        self._move(BreakerState.OPEN, why, transitions)

    def _close(self, transitions: list[tuple[str, str, str]]) -> None:
        # A closed circuit starts with a clean slate: the failures that opened it are history.
        self._consecutive = 0
        self._calls.clear()
        self._failures_in_window = 0
        self._probe_started = None
        self._move(BreakerState.CLOSED, "probe succeeded", transitions)

    def _move(self, state: BreakerState, why: str, transitions: list[tuple[str, str, str]]) -> None:
        old, self._state = self._state, state
        transitions.append((old.value, state.value, why))

    def _announce(self, transitions: list[tuple[str, str, str]]) -> None:
        if self.on_transition is None:
            return
        for old, new, why in transitions:
            self.on_transition(self.endpoint, old, new, why)


@dataclass
class BreakerRegistry:
    """One breaker per endpoint name for the life of the environment; the first caller's settings (the
    model's thresholds) create it. Models sharing an endpoint share its breaker.

    Example:
        >>> registry = BreakerRegistry(on_transition=lambda endpoint, old, new, why: log(endpoint, new, why))
        >>> registry.for_endpoint("prod-iris", BreakerSettings(failure_threshold=3)).allow()
        True
    """

    clock: Clock = time.monotonic
    on_transition: Transition | None = None
    _breakers: dict[str, CircuitBreaker] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_endpoint(self, endpoint: str, settings: BreakerSettings | None = None) -> CircuitBreaker:
        breaker = self._breakers.get(endpoint)
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(endpoint)
            if breaker is None:
                breaker = CircuitBreaker(endpoint, settings, self.clock, self._transition)
                self._breakers[endpoint] = breaker
            return breaker

    def states(self) -> dict[str, BreakerState]:
        """Every known endpoint's breaker state (for a health view or a periodic metric)."""
        with self._lock:
            breakers = list(self._breakers.values())
        return {breaker.endpoint: breaker.state for breaker in breakers}

    def reset(self) -> None:
        """Forget every breaker, as a fresh environment would start."""
        with self._lock:
            self._breakers.clear()

    def _transition(self, endpoint: str, old: str, new: str, why: str) -> None:
        # Looked up at call time, so a callback set after breakers exist still hears them.
        if self.on_transition is not None:
            self.on_transition(endpoint, old, new, why)


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

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
