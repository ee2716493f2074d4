"""The router's side of shadow versions: after a model's primary answer, a sampled request is written as one
log line (:class:`functions.domain.shadow.ShadowRequest`) for the shadow worker, which a CloudWatch Logs
subscription filter on the router's log group delivers to it (``infra/constructs/shadow.py``).

Shipping never touches the answer: it runs after the answer is built, and whatever fails in it is swallowed
and counted (``ShadowSkipped``). ``python -m bench.shadow_overhead`` measures what it adds to a request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Final

from functions.config.telemetry import METRICS_NAMESPACE, SHADOW_SERVICE, SHADOW_SKIPPED_METRIC
from functions.domain.outcomes import Answered
from functions.domain.shadow import (
    SHADOW_LINE_MAX_BYTES,
    ShadowKey,
    ShadowRequest,
    sampled,
    shadow_metrics_document,
    shadow_of,
)

if TYPE_CHECKING:
    from functions.config.model_types import ModelsConfig, VersionConfig
    from functions.domain.infer import InferCall, InferUseCase
    from functions.domain.outcomes import InferOutcome

# The sticky key a caller may send when it sends no Idempotency-Key (the version pick reads the same ones): a
# retry carrying the same key is shadowed exactly when its first try was.
ROUTING_KEY_HEADER: Final[str] = "x-routing-key"


def sticky_key(headers: Mapping[str, str]) -> str | None:
    """``X-Routing-Key``, whatever its case (API Gateway passes headers as the client sent them)."""
    return next((value for name, value in headers.items() if name.lower() == ROUTING_KEY_HEADER and value), None)


class ShadowShipping:
    """Writes a sampled request's shadow line through ``log_sink`` (stdout in Lambda)."""

    def __init__(self, config: ModelsConfig, log_sink: Callable[[str], None]) -> None:
        self.shadows: dict[str, VersionConfig] = {
            model.name: shadow for model in config.models if (shadow := shadow_of(model)) is not None
        }
        self.log_sink = log_sink

    def infer(
        self, use_case: InferUseCase, call: InferCall, headers: Mapping[str, str], remaining_ms: Callable[[], int]
    ) -> InferOutcome:
        """The use case's outcome for ``call``, untouched; a primary answer is then offered to the shadow."""
        started = time.perf_counter()
        outcome = use_case.infer(call, remaining_ms=remaining_ms)
        if isinstance(outcome, Answered) and call.model in self.shadows:
            latency_ms = (time.perf_counter() - started) * 1000
            # The validated request names the version that served it (the weights' pick, or a pin).
            served = outcome.request.model.version if outcome.request is not None else None
            version = served or call.version or use_case.model(call.model).version
            self.ship(call, version, headers, outcome.body, latency_ms)
        return outcome

    def ship(
        self, call: InferCall, primary_version: str, headers: Mapping[str, str], answer: bytes, latency_ms: float
    ) -> None:
        """Write the line if this request is in the shadow's sample; never raises. ``primary_version``: the
        version that served the request (a request the shadow version served itself is not shadowed)."""
        shadow = self.shadows[call.model]
        if shadow.shadow is None or shadow.version == primary_version:
            return
        try:
            key = ShadowKey(call.idempotency_key or sticky_key(headers), call.body, call.caller)
            if not sampled(key, call.model, shadow.version, shadow.shadow.sample_rate):
                return
            line = ShadowRequest(
                call.model,
                shadow.version,
                primary_version,
                call.correlation_id,
                call.body.decode(),
                answer.decode(),
                latency_ms,
            ).line()
            if len(line.encode()) > SHADOW_LINE_MAX_BYTES:
                self.skipped(call.model, shadow.version)
                return
            self.log_sink(line)
        except Exception:  # the answer is already built: nothing here may reach the caller
            self.skipped(call.model, shadow.version)

    def skipped(self, model: str, version: str) -> None:
        try:
            document = shadow_metrics_document(
                SHADOW_SERVICE,
                model,
                version,
                {SHADOW_SKIPPED_METRIC: 1},
                timestamp_ms=int(time.time() * 1000),
                namespace=METRICS_NAMESPACE,
            )
            self.log_sink(json.dumps(document, separators=(",", ":")))
        except Exception:  # a sink that fails twice has nothing left to count with
            return
