"""The sync call loop never outlives its deadline, whatever the endpoint does: a grid of endpoint behaviours x
time left, on a fake clock (sleeps and endpoint latency advance it), through the infer use case's own loop."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from functions.config.models import load_models_config
from functions.domain.breaker import BreakerRegistry
from functions.domain.deadline import DeadlineBudget
from functions.domain.endpoint_call import EndpointCaller
from functions.domain.errors import (
    EndpointRejectedError,
    EndpointTimeoutError,
    EndpointUnavailableError,
    InferenceError,
    ModelFailedError,
)
from functions.domain.failures import DegradedBy, FailureReason
from functions.domain.infer import SPILL_RESERVE_MS, AsyncJobs, InferCall, InferUseCase
from functions.domain.outcomes import Answered, JobReceipt, SpilledToAsync
from functions.domain.validation import InferRequest

CONFIG = load_models_config()
BODY = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]})
RESERVE_MS = 300
ANSWER = b'{"model_name": "iris", "outputs": []}'


@dataclass
class FakeClock:
    now_s: float = 0.0

    def __call__(self) -> float:
        return self.now_s

    def remaining(self, total_ms: int) -> Callable[[], int]:
        """A Lambda context's get_remaining_time_in_millis, ``total_ms`` at the start of this clock."""
        return lambda: int(total_ms - self.now_s * 1000)

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now_s += seconds


@dataclass
class ScriptedEndpoint:
    """Each call takes ``latency_ms`` (cut at the call's timeout, as a read timeout does) and then fails with
    the next outcome of ``failures`` (None: answers); past the script it keeps failing with the last one."""

    clock: FakeClock
    latency_ms: float
    failures: list[InferenceError | None]
    timeouts_ms: list[int] = field(default_factory=list)

    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes:
        timeout_ms = attempt_ms()
        self.timeouts_ms.append(timeout_ms)
        if self.latency_ms > timeout_ms:
            self.clock.sleep(timeout_ms / 1000)
            raise EndpointTimeoutError(f"{endpoint} did not answer within {timeout_ms} ms")
        self.clock.sleep(self.latency_ms / 1000)
        outcome = self.failures[min(len(self.timeouts_ms) - 1, len(self.failures) - 1)]
        if outcome is not None:
            raise outcome
        return ANSWER


def throttled() -> EndpointUnavailableError:
    return EndpointUnavailableError("throttled", reason=FailureReason.THROTTLED)


BEHAVIOURS: dict[str, list[InferenceError | None]] = {
    "healthy": [None],
    "always-throttled": [throttled()],
    "throttled-then-ok": [throttled(), throttled(), None],
    "model-error": [ModelFailedError("model failed", 500)],
    "rejected": [EndpointRejectedError("rejected")],
}
LATENCIES_MS = [0, 40, 400, 2_500, 30_000]
REMAINING_MS = [200, 700, 1_500, 5_000, 28_000]


@dataclass
class RecordingJobs:
    """The async port: records the time left when a submit starts."""

    clock: FakeClock
    submitted_with_ms: list[int] = field(default_factory=list)

    def submit(self, request: InferRequest, *, remaining_ms: Callable[[], int], **_: Any) -> JobReceipt:
        self.submitted_with_ms.append(remaining_ms())
        return JobReceipt("0" * 32, "queued")

    def view(self, job_id: str) -> Any:
        raise NotImplementedError


def router(
    clock: FakeClock, endpoint: ScriptedEndpoint, *, jobs: RecordingJobs | None = None, attempts: int = 5
) -> InferUseCase:
    model = CONFIG.model("iris")
    assert model is not None
    resilience = dataclasses.replace(
        model.resilience,
        max_attempts=attempts,
        base_delay_ms=100,
        max_delay_ms=2_000,
        breaker_failure_threshold=1_000,  # the loop itself is under test, not the breaker
        spill_async=jobs is not None,
    )
    iris = dataclasses.replace(model, resilience=resilience)
    config = dataclasses.replace(CONFIG, models=tuple(iris if m.name == "iris" else m for m in CONFIG.models))
    budget = DeadlineBudget(invoke_budget_ms=20_000, reserve_ms=RESERVE_MS)
    async_jobs: Callable[[], AsyncJobs] | None = (lambda: jobs) if jobs is not None else None
    return InferUseCase(
        config=config,
        endpoint=EndpointCaller(endpoint, budget, BreakerRegistry(clock=clock), random.Random(7), clock.sleep),
        async_jobs=async_jobs,
    )


@pytest.mark.parametrize(
    ("behaviour", "latency_ms", "remaining_ms"), list(itertools.product(BEHAVIOURS, LATENCIES_MS, REMAINING_MS))
)
def test_call_loop_ends_with_the_response_reserve_left(behaviour: str, latency_ms: int, remaining_ms: int) -> None:
    clock = FakeClock()
    endpoint = ScriptedEndpoint(clock, latency_ms, BEHAVIOURS[behaviour])
    routed = router(clock, endpoint)
    try:
        outcome = routed.infer(InferCall("iris", BODY.encode()), remaining_ms=clock.remaining(remaining_ms))
        answer: bytes | InferenceError = outcome.body if isinstance(outcome, Answered) else b""
    except InferenceError as error:
        answer = error
    elapsed_ms = clock.now_s * 1000
    assert elapsed_ms <= max(remaining_ms - RESERVE_MS, 0) + 1e-6, (answer, endpoint.timeouts_ms)
    assert all(timeout <= 20_000 for timeout in endpoint.timeouts_ms)  # never past the invoke budget
    if isinstance(answer, EndpointUnavailableError):
        assert answer.retry_after_seconds >= 1
    if behaviour in ("model-error", "rejected") and latency_ms <= remaining_ms - RESERVE_MS:
        assert len(endpoint.timeouts_ms) <= 1  # a final error is never retried


@pytest.mark.parametrize("remaining_ms", [2_000, 3_000, 10_000])
def test_a_spilling_model_keeps_the_submit_time_when_its_sync_call_fails(remaining_ms: int) -> None:
    clock = FakeClock()
    jobs = RecordingJobs(clock)
    endpoint = ScriptedEndpoint(clock, 60_000, [None])  # never answers in time
    outcome = router(clock, endpoint, jobs=jobs).infer(
        InferCall("iris", BODY.encode()), remaining_ms=clock.remaining(remaining_ms)
    )
    assert outcome == SpilledToAsync(JobReceipt("0" * 32, "queued"), FailureReason.DEADLINE)
    assert outcome.answered_by is DegradedBy.SPILLED_ASYNC
    [left_ms] = jobs.submitted_with_ms
    assert left_ms >= SPILL_RESERVE_MS + RESERVE_MS


def test_a_spill_that_cannot_fit_is_not_attempted() -> None:
    clock = FakeClock()
    call = InferCall("iris", BODY.encode())
    jobs = RecordingJobs(clock)
    with pytest.raises(EndpointTimeoutError):
        router(clock, ScriptedEndpoint(clock, 0, [None]), jobs=jobs).infer(
            call, remaining_ms=clock.remaining(RESERVE_MS + SPILL_RESERVE_MS - 1)
        )
    assert jobs.submitted_with_ms == []
    spilled = router(clock, ScriptedEndpoint(clock, 0, [None]), jobs=jobs).infer(
        call, remaining_ms=clock.remaining(RESERVE_MS + SPILL_RESERVE_MS)
    )
    assert isinstance(spilled, SpilledToAsync)
    without_async = router(clock, ScriptedEndpoint(clock, 60_000, [None]))
    with pytest.raises(EndpointTimeoutError):
        without_async.infer(call, remaining_ms=clock.remaining(28_000))
