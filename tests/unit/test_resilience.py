"""The resilience building blocks (functions/domain/{failures,retry,breaker,last_good}.py) with a fake clock and seeded randomness: retry classification and
backoff, the circuit breaker's transitions, the breaker registry and the last-good cache. No sleeps."""

from __future__ import annotations

import random
import threading

import pytest

from functions.adapters.sagemaker import TRANSIENT_ERRORS
from functions.domain.breaker import BreakerRegistry, BreakerSettings, BreakerState, CircuitBreaker
from functions.domain.errors import (
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    IdempotencyKeyReusedError,
    InvalidRequestError,
    ModelFailedError,
    ModelNotFoundError,
    PayloadTooLargeError,
)
from functions.domain.failures import DEADLINE_REASONS, RETRYABLE_REASONS, FailureReason
from functions.domain.last_good import LastGoodCache
from functions.domain.retry import ErrorClass, RetryPolicy, classify, is_retryable, retry_after_seconds


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def unavailable(reason: str) -> EndpointUnavailableError:
    return EndpointUnavailableError(f"endpoint 'iris' is unavailable ({reason})", reason=FailureReason(reason))


# --- classification --------------------------------------------------------------------------------------

CLASSIFICATION = [
    (unavailable("model-not-ready"), ErrorClass.RETRYABLE),
    (unavailable("throttled"), ErrorClass.RETRYABLE),
    (unavailable("internal-failure"), ErrorClass.RETRYABLE),
    (unavailable("service-unavailable"), ErrorClass.RETRYABLE),
    (unavailable("internal-dependency"), ErrorClass.RETRYABLE),
    (unavailable("connection-error"), ErrorClass.RETRYABLE),
    (unavailable("submit-timeout"), ErrorClass.DEADLINE),
    (EndpointTimeoutError("no answer within 500 ms"), ErrorClass.DEADLINE),
    (unavailable("circuit-open"), ErrorClass.FINAL),
    (unavailable("endpoint-not-found"), ErrorClass.FINAL),  # creating an endpoint takes minutes
    (unavailable("async-not-configured"), ErrorClass.FINAL),
    (unavailable("job-table-unavailable"), ErrorClass.FINAL),
    (ModelFailedError("model failed (500)", 500), ErrorClass.FINAL),
    (ModelFailedError("model failed (400)", 400), ErrorClass.FINAL),
    (InvalidRequestError("bad datatype"), ErrorClass.FINAL),
    (EndpointRejectedError("ValidationError"), ErrorClass.FINAL),
    (PayloadTooLargeError("too large"), ErrorClass.FINAL),
    (ModelNotFoundError("no such model"), ErrorClass.FINAL),
    (IdempotencyKeyReusedError("reused"), ErrorClass.FINAL),
    (RuntimeError("a bug"), ErrorClass.FINAL),
]


@pytest.mark.parametrize(("error", "expected"), CLASSIFICATION, ids=lambda v: getattr(v, "reason", type(v).__name__))
def test_classification_table(error: BaseException, expected: ErrorClass) -> None:
    assert classify(error) is expected
    assert is_retryable(error) is (expected is ErrorClass.RETRYABLE)
    assert expected.endpoint_failure is (expected is not ErrorClass.FINAL)


def test_every_transient_sagemaker_error_is_retryable() -> None:
    assert set(TRANSIENT_ERRORS.values()) <= RETRYABLE_REASONS


@pytest.mark.parametrize("reason", list(FailureReason))
def test_every_failure_reason_has_one_class(reason: FailureReason) -> None:
    expected = (
        ErrorClass.RETRYABLE
        if reason in RETRYABLE_REASONS
        else ErrorClass.DEADLINE
        if reason in DEADLINE_REASONS
        else ErrorClass.FINAL
    )
    assert classify(unavailable(reason)) is expected
    assert not (RETRYABLE_REASONS & DEADLINE_REASONS)


# --- retry policy ----------------------------------------------------------------------------------------


def test_full_jitter_stays_within_the_capped_exponential_bound() -> None:
    policy = RetryPolicy(base_delay_ms=50, max_delay_ms=400, max_attempts=10)
    rng = random.Random(42)
    for attempt, bound in [(0, 50), (1, 100), (2, 200), (3, 400), (4, 400), (9, 400)]:
        delays = [policy.delay_ms(attempt, rng) for _ in range(500)]
        assert all(0.0 <= delay <= bound for delay in delays)
        # Full jitter spreads over the whole range, not just near the bound.
        assert min(delays) < bound * 0.1
        assert max(delays) > bound * 0.9


def test_seeded_delays_replay() -> None:
    policy = RetryPolicy(base_delay_ms=50, max_delay_ms=1000, max_attempts=5)
    first = [policy.next_delay_ms(n, 10_000, random.Random(3)) for n in range(4)]
    again = [policy.next_delay_ms(n, 10_000, random.Random(3)) for n in range(4)]
    assert first == again
    assert all(isinstance(delay, int) for delay in first)


def test_attempts_are_bounded() -> None:
    policy = RetryPolicy(base_delay_ms=10, max_delay_ms=10, max_attempts=3)
    rng = random.Random(0)
    assert policy.next_delay_ms(0, 10_000, rng) is not None
    assert policy.next_delay_ms(1, 10_000, rng) is not None
    assert policy.next_delay_ms(2, 10_000, rng) is None
    assert RetryPolicy(max_attempts=1).next_delay_ms(0, 10_000, rng) is None


def test_no_retry_when_the_next_attempt_cannot_fit_the_deadline() -> None:
    policy = RetryPolicy(base_delay_ms=100, max_delay_ms=100, max_attempts=5, min_attempt_ms=250)
    rng = random.Random(5)
    assert policy.next_delay_ms(0, 10_000, rng) is not None
    # Even a zero pause leaves less than one attempt's worth.
    assert policy.next_delay_ms(0, 249, rng) is None
    assert RetryPolicy(100, 100, 5, min_attempt_ms=1000).next_delay_ms(0, 1000, rng) is None
    # At 300 ms left, whether it fits depends on the drawn pause: pause + 250 must fit in 300.
    for seed in range(50):
        delay = policy.next_delay_ms(0, 300, random.Random(seed))
        drawn = RetryPolicy(100, 100, 5).delay_ms(0, random.Random(seed))
        assert (delay is None) is (300 - int(-(-drawn // 1)) < 250)


def test_policy_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base_delay_ms=-1)


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert retry_after_seconds() == 1
    assert retry_after_seconds(backoff_ms=0) == 1
    assert retry_after_seconds(backoff_ms=200) == 1
    assert retry_after_seconds(backoff_ms=1001) == 2
    assert retry_after_seconds(cooldown_left_s=4.2) == 5
    assert retry_after_seconds(backoff_ms=3000, cooldown_left_s=1.5) == 3
    assert retry_after_seconds(cooldown_left_s=-3) == 1
    policy = RetryPolicy(base_delay_ms=500, max_delay_ms=4000, max_attempts=3)
    assert [policy.retry_after_s(n) for n in range(5)] == [1, 1, 2, 4, 4]


# --- circuit breaker -------------------------------------------------------------------------------------

Transitions = list[tuple[str, str, str, str]]


def state_of(subject: CircuitBreaker) -> BreakerState:
    # mypy narrows a property after one assert and would call a later, different state unreachable.
    return subject.state


def breaker(clock: FakeClock, transitions: Transitions | None = None, **settings: float) -> CircuitBreaker:
    options = {"failure_threshold": 3, "failure_rate": 0.5, "window_s": 30, "min_calls": 10, "cooldown_s": 10}
    options.update(settings)
    record = transitions.append if transitions is not None else None
    return CircuitBreaker(
        "iris",
        BreakerSettings(**options),  # type: ignore[arg-type]
        clock=clock,
        on_transition=(lambda *event: record(event)) if record else None,
    )


def test_consecutive_failures_open_the_circuit() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions)
    subject.record_failure()
    subject.record_failure()
    assert subject.state == "closed"
    assert subject.allow()
    subject.record_failure()
    assert subject.state is BreakerState.OPEN
    assert transitions == [("iris", "closed", "open", "3 consecutive endpoint failures")]


def test_a_success_resets_the_consecutive_count() -> None:
    # A failure rate of 1.0 keeps the rate rule out of the way: only the consecutive count could open it.
    subject = breaker(FakeClock(), failure_rate=1.0)
    for _ in range(5):
        subject.record_failure()
        subject.record_failure()
        subject.record_success()
    assert subject.state is BreakerState.CLOSED


def test_failure_rate_over_the_window_opens_the_circuit() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions, failure_threshold=100, failure_rate=0.5, min_calls=10)
    for _ in range(4):  # 4 of 8: over the rate, but too few calls to judge
        subject.record_failure()
        subject.record_success()
    assert subject.state is BreakerState.CLOSED
    subject.record_success()  # 4 of 9
    subject.record_failure()  # 5 of 10 = 0.5
    assert state_of(subject) is BreakerState.OPEN
    assert transitions[-1][1:3] == ("closed", "open")
    assert "5 of 10 calls in 30 s failed" in transitions[-1][3]


def test_calls_outside_the_window_do_not_count() -> None:
    clock = FakeClock()
    subject = breaker(clock, failure_threshold=100, failure_rate=0.5, min_calls=10, window_s=30)
    for _ in range(9):
        subject.record_failure()
        subject.record_success()
        clock.advance(1)
    assert subject.state is BreakerState.OPEN  # 9 of 18 within 18 s
    fresh = breaker(clock, failure_threshold=100, failure_rate=0.5, min_calls=10, window_s=30)
    for _ in range(6):
        fresh.record_failure()
    clock.advance(31)  # those six fall out of the window
    for _ in range(9):
        fresh.record_success()
    fresh.record_failure()
    assert fresh.state is BreakerState.CLOSED  # 1 of 10 now


def test_open_circuit_refuses_until_the_cooldown_passes() -> None:
    clock = FakeClock()
    subject = breaker(clock, cooldown_s=10)
    for _ in range(3):
        subject.record_failure()
    assert not subject.allow()
    assert subject.retry_after_s == 10
    clock.advance(6.5)
    assert not subject.allow()
    assert subject.retry_after_s == 4  # 3.5 s left, rounded up
    clock.advance(3.4)
    assert subject.retry_after_s == 1  # 0.1 s left: still a whole second
    assert not subject.allow()
    clock.advance(0.1)
    assert subject.state is BreakerState.HALF_OPEN
    assert subject.allow()


def test_half_open_admits_exactly_one_probe() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    assert [subject.allow() for _ in range(4)] == [True, False, False, False]
    assert transitions[-1] == ("iris", "open", "half-open", "cooldown over: one probe goes through")


def test_half_open_single_probe_under_concurrency() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    start = threading.Barrier(16)
    admitted: list[bool] = []
    lock = threading.Lock()

    def caller() -> None:
        start.wait()
        allowed = subject.allow()
        with lock:
            admitted.append(allowed)

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert admitted.count(True) == 1


def test_probe_success_closes_the_circuit_with_a_clean_slate() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    assert subject.allow()
    subject.record_success()
    assert subject.state is BreakerState.CLOSED
    assert transitions[-1] == ("iris", "half-open", "closed", "probe succeeded")
    assert all(subject.allow() for _ in range(5))
    subject.record_failure()
    subject.record_failure()
    assert subject.state is BreakerState.CLOSED  # the old failures were forgotten


def test_probe_failure_reopens_with_a_new_cooldown() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions, cooldown_s=10)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    assert subject.allow()
    clock.advance(2)  # the probe took 2 s
    subject.record_failure()
    assert subject.state is BreakerState.OPEN
    assert transitions[-1] == ("iris", "half-open", "open", "probe failed")
    assert subject.retry_after_s == 10
    clock.advance(9)
    assert not subject.allow()
    clock.advance(1)
    assert subject.allow()


def test_a_final_error_frees_the_probe_slot_without_deciding() -> None:
    clock = FakeClock()
    subject = breaker(clock)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    assert subject.allow()
    subject.record(ModelFailedError("model failed (400)", 400))
    assert subject.state is BreakerState.HALF_OPEN
    assert subject.allow()  # the next caller probes
    subject.record(None)
    assert state_of(subject) is BreakerState.CLOSED


def test_record_classifies() -> None:
    subject = breaker(FakeClock())
    subject.record(unavailable("throttled"))
    subject.record(EndpointTimeoutError("late"))
    subject.record(InvalidRequestError("bad"))  # not the endpoint's fault: no change
    subject.record(unavailable("connection-error"))
    assert subject.state is BreakerState.OPEN


def test_a_lost_probe_times_out() -> None:
    clock = FakeClock()
    subject = breaker(clock, probe_timeout_s=5)
    for _ in range(3):
        subject.record_failure()
    clock.advance(10)
    assert subject.allow()
    clock.advance(4.9)
    assert not subject.allow()
    clock.advance(0.1)
    assert subject.allow()


def test_outcomes_while_open_change_nothing() -> None:
    clock, transitions = FakeClock(), Transitions()
    subject = breaker(clock, transitions)
    for _ in range(3):
        subject.record_failure()
    subject.record_success()  # a call let through before the circuit opened
    subject.record_failure()
    assert subject.state is BreakerState.OPEN
    assert subject.retry_after_s == 10
    assert len(transitions) == 1


def test_transition_callback_may_read_the_breaker() -> None:
    # The callback runs outside the lock: reading the breaker from it must not deadlock.
    clock = FakeClock()
    seen: list[tuple[str, int]] = []
    subject = CircuitBreaker("iris", BreakerSettings(failure_threshold=1, cooldown_s=3), clock=clock)
    subject.on_transition = lambda endpoint, old, new, why: seen.append((subject.state, subject.retry_after_s))
    subject.record_failure()
    assert seen == [("open", 3)]


def test_breaker_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        BreakerSettings(failure_rate=0)
    with pytest.raises(ValueError, match="at least 1"):
        BreakerSettings(failure_threshold=0)


# --- registry --------------------------------------------------------------------------------------------


def test_registry_keeps_one_breaker_per_endpoint_with_its_models_settings() -> None:
    clock, transitions = FakeClock(), Transitions()
    registry = BreakerRegistry(clock=clock)
    registry.on_transition = lambda *event: transitions.append(event)
    iris = registry.for_endpoint("iris", BreakerSettings(failure_threshold=1))
    churn = registry.for_endpoint("churn", BreakerSettings(failure_threshold=2))
    assert registry.for_endpoint("iris", BreakerSettings(failure_threshold=99)) is iris
    iris.record_failure()
    churn.record_failure()
    assert (iris.state, churn.state) == ("open", "closed")
    assert transitions == [("iris", "closed", "open", "1 consecutive endpoint failures")]
    # A new environment's registry starts with every circuit closed.
    assert BreakerRegistry(clock=clock).for_endpoint("iris").state is BreakerState.CLOSED


# --- last-good cache -------------------------------------------------------------------------------------


def answer(value: str) -> bytes:
    return f'{{"outputs":"{value}"}}'.encode()


def test_cache_evicts_the_least_recently_used() -> None:
    cache = LastGoodCache(max_entries=2, max_age_s=60, clock=FakeClock())
    cache.put("a", answer("A"))
    cache.put("b", answer("B"))
    assert cache.get("a") == answer("A")  # a is now the most recently used
    cache.put("c", answer("C"))
    assert cache.get("b") is None
    assert cache.get("a") == answer("A")
    assert cache.get("c") == answer("C")
    cache.put("a", answer("A2"))  # a newer answer replaces the old one
    assert cache.get("a") == answer("A2")
    assert len(cache) == 2


def test_cache_entries_expire() -> None:
    clock = FakeClock()
    cache = LastGoodCache(max_entries=10, max_age_s=60, clock=clock)
    cache.put("a", answer("A"))
    clock.advance(60)
    assert cache.get("a") == answer("A")
    clock.advance(0.001)
    assert cache.get("a") is None
    assert len(cache) == 0


def test_cache_key_separates_models_and_inputs() -> None:
    inputs = b'{"inputs":[1]}'
    assert LastGoodCache.key("iris", inputs) == LastGoodCache.key("iris", inputs)
    assert LastGoodCache.key("iris", inputs) != LastGoodCache.key("churn", inputs)
    assert LastGoodCache.key("iris", inputs) != LastGoodCache.key("iris", b'{"inputs":[2]}')
    assert len(LastGoodCache.key("iris", inputs)) == 64
