"""What an infer request came to: the typed outcomes :class:`functions.domain.infer.InferUseCase` returns.

A refusal is not an outcome but a raised :class:`functions.domain.errors.InferenceError` (its status and
``Retry-After`` fixed when it was made). The handler maps each outcome to HTTP in one table
(``functions/handlers/router/responses.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from functions.domain.failures import DegradedBy, FailureReason

if TYPE_CHECKING:
    from functions.domain.validation import InferRequest


@dataclass(frozen=True)
class JobReceipt:
    """An accepted async job, as the 202 answers it."""

    job_id: str
    status: str

    def document(self) -> dict[str, str]:
        return {"id": self.job_id, "status": self.status}


@dataclass(frozen=True)
class Answered:
    """The model's own answer (OIP JSON), and the validated request it answers (what capture reads)."""

    body: bytes
    request: InferRequest | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Degraded:
    """The endpoint could not answer (``cause``); the model's configured fallback did (``answered_by``)."""

    body: bytes
    cause: FailureReason
    answered_by: DegradedBy


@dataclass(frozen=True)
class SpilledToAsync:
    """The sync call failed (``cause``) and the request became an async job (``resilience.spill_async``)."""

    job: JobReceipt
    cause: FailureReason
    answered_by: DegradedBy = DegradedBy.SPILLED_ASYNC


@dataclass(frozen=True)
class Submitted:
    """The request took the async path; ``preference_applied`` when because the caller asked (RFC 7240)."""

    job: JobReceipt
    preference_applied: bool


InferOutcome = Answered | Degraded | SpilledToAsync | Submitted
