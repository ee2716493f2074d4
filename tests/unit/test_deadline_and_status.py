from __future__ import annotations

import pytest

from functions.adapters.sagemaker import timeout_step_ms
from functions.domain.deadline import DeadlineBudget
from functions.domain.errors import EndpointTimeoutError, EndpointUnavailableError, ModelFailedError
from functions.domain.failures import FailureReason
from functions.handlers.router.responses import error_response, status_for


def test_invoke_timeout_is_capped_by_the_budget() -> None:
    assert DeadlineBudget(invoke_budget_ms=20_000, reserve_ms=300).invoke_timeout_ms(28_000) == 20_000


def test_invoke_timeout_leaves_the_reserve_when_time_is_short() -> None:
    assert DeadlineBudget(invoke_budget_ms=20_000, reserve_ms=300).invoke_timeout_ms(1_000) == 700


def test_invoke_timeout_with_no_time_left_is_a_timeout() -> None:
    with pytest.raises(EndpointTimeoutError, match="no time left"):
        DeadlineBudget(invoke_budget_ms=20_000, reserve_ms=300).invoke_timeout_ms(320)


@pytest.mark.parametrize(
    ("timeout_ms", "step"),
    [(10, 50), (50, 50), (699, 500), (700, 500), (20_000, 20_000), (27_999, 25_000), (99_000, 60_000)],
)
def test_timeout_step_never_exceeds_the_timeout_above_the_smallest_step(timeout_ms: int, step: int) -> None:
    assert timeout_step_ms(timeout_ms) == step


@pytest.mark.parametrize(("original", "status"), [(400, 400), (404, 422), (422, 422), (500, 502), (503, 502)])
def test_model_error_status_follows_the_original_status(original: int, status: int) -> None:
    assert status_for(ModelFailedError("boom", original)) == status


def test_unavailable_answer_carries_retry_after() -> None:
    response = error_response(EndpointUnavailableError("busy", reason=FailureReason.THROTTLED, retry_after_seconds=2))
    assert (response.status_code, response.headers["Retry-After"]) == (503, "2")
