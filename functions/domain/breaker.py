"""The circuit breaker: one per endpoint and Lambda environment, so a failing endpoint is given a rest
instead of every request's retries. Pure Python; the clock comes in as a value, so tests drive every
transition without sleeping. What counts against an endpoint is :func:`functions.domain.retry.classify`'s
call.

Example:
    >>> breaker = registry.for_endpoint("iris", BreakerSettings())
    >>> if breaker.allow():
    ...     try:
    ...         answer = backend.invoke(...)
    ...     except InferenceError as error:
    ...         breaker.record(error)
    ...     else:
    ...         breaker.record_success()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from functions.domain.retry import classify, retry_after_seconds

Clock = Callable[[], float]
# endpoint, old state, new state, why; called outside the breaker's lock, so it may log, emit metrics or
# even read the breaker.
Transition = Callable[[str, str, str, str], None]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


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

    def state_of(self, endpoint: str) -> BreakerState:
        """The endpoint's circuit as of now, read without creating a breaker: closed when no call has made one."""
        breaker = self._breakers.get(endpoint)
        return breaker.state if breaker is not None else BreakerState.CLOSED

    def _transition(self, endpoint: str, old: str, new: str, why: str) -> None:
        # Looked up at call time, so a callback set after breakers exist still hears them.
        if self.on_transition is not None:
            self.on_transition(endpoint, old, new, why)
