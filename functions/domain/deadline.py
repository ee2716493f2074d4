"""How long a call to a model may take, given the time the Lambda has left.

The SageMaker call must end before the Lambda does, and the Lambda before API Gateway, so that the caller
reads our answer rather than a gateway 504. The invoke timeout is the smaller of the configured budget and
what remains after keeping ``reserve_ms`` to shape the response. :data:`MIN_ATTEMPT_MS` is the one floor for
every attempt, the first as much as a retry (functions/domain/retry.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from functions.domain.errors import EndpointTimeoutError

# Below this an attempt would only time out: every retry after a connection error, and the first call of a
# fresh environment, opens a new connection, and its TCP + TLS handshake to the regional runtime endpoint
# costs tens of milliseconds before the model (itself some tens of ms for a small serverless model) runs.
# 50 ms would let an attempt start that cannot answer; answering at once is more honest.
MIN_ATTEMPT_MS: Final[int] = 250


@dataclass(frozen=True)
class DeadlineBudget:
    invoke_budget_ms: int
    reserve_ms: int

    def invoke_timeout_ms(self, remaining_ms: int) -> int:
        available = min(self.invoke_budget_ms, remaining_ms - self.reserve_ms)
        if available < MIN_ATTEMPT_MS:
            raise EndpointTimeoutError(f"no time left to call the model ({remaining_ms} ms remained)")
        return available
