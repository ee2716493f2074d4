"""How long a call to a model may take, given the time the Lambda has left.

The SageMaker call must end before the Lambda does, and the Lambda before API Gateway (design.md), so that
the caller reads our answer rather than a gateway 504. The invoke timeout is the smaller of the configured
budget and what remains after keeping ``reserve_ms`` to shape the response.
"""

from __future__ import annotations

from dataclasses import dataclass

from functions.domain.errors import EndpointTimeoutError

# Below this an attempt cannot even finish a TLS handshake; answering 504 at once is more honest.
MIN_ATTEMPT_MS = 50


@dataclass(frozen=True)
class DeadlineBudget:
    invoke_budget_ms: int
    reserve_ms: int

    def invoke_timeout_ms(self, remaining_ms: int) -> int:
        available = min(self.invoke_budget_ms, remaining_ms - self.reserve_ms)
        if available < MIN_ATTEMPT_MS:
            raise EndpointTimeoutError(f"no time left to call the model ({remaining_ms} ms remained)")
        return available
