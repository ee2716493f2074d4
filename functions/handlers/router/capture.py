"""The router's side of capture for drift monitoring: after a model's own answer (a 200 on the serverless or
the in-Lambda route), a sampled request is written as one capture line (:func:`functions.domain.capture.
capture_line`) through ``log_sink`` (stdout in Lambda), which a subscription filter on the router's log group
hands to Firehose (``infra/constructs/capture.py``). No network call on the request path.

Capture never touches the answer: it runs after the answer is built, a line over the log event cap is dropped
and counted (``CaptureSkipped``), and whatever fails in it is swallowed and counted (``CaptureErrors``).
``python -m bench.capture_overhead`` measures what it adds to a request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from functions.config.telemetry import (
    CAPTURE_ERRORS_METRIC,
    CAPTURE_SKIPPED_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    ROUTER_SERVICE,
    SERVICE_DIMENSION,
)
from functions.domain.capture import capture_line, capture_sampled
from functions.domain.outcomes import Answered
from functions.domain.shadow import SHADOW_LINE_MAX_BYTES
from functions.handlers.router.shadow_shipping import ShadowShipping

if TYPE_CHECKING:
    from functions.config.model_types import ModelsConfig
    from functions.domain.infer import InferCall, InferUseCase
    from functions.domain.outcomes import InferOutcome

# The same cap as a shadow line's: CloudWatch Logs' event size limit less a margin for what the pipeline adds.
CAPTURE_LINE_MAX_BYTES = SHADOW_LINE_MAX_BYTES


class RequestCapture:
    """Writes a sampled answered request's capture line; ``sample_rate`` overrides every capturing model's own
    (the local stack captures everything), never turning capture on for a model whose config has none."""

    def __init__(
        self,
        config: ModelsConfig,
        log_sink: Callable[[str], None],
        sample_rate: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.captures = {model.name: model.capture for model in config.models if model.capture is not None}
        self.rates = {name: sample_rate or capture.sample_rate for name, capture in self.captures.items()}
        self.log_sink = log_sink
        self.clock = clock

    def record(self, call: InferCall, outcome: InferOutcome) -> None:
        """Write the line if ``outcome`` is the model's own answer and this request is in the sample; never
        raises."""
        if not isinstance(outcome, Answered) or outcome.request is None or call.model not in self.captures:
            return
        try:
            if not capture_sampled(call.correlation_id, call.body, call.model, self.rates[call.model]):
                return
            served = outcome.request.model
            line = capture_line(
                served.name,
                served.version,
                outcome.request.document,
                outcome.body,
                self.captures[call.model],
                timestamp=self.clock(),
            )
            if len(line.encode()) > CAPTURE_LINE_MAX_BYTES:
                self.count(call.model, CAPTURE_SKIPPED_METRIC)
                return
            self.log_sink(line)
        except Exception:  # the answer is already built: nothing here may reach the caller
            self.count(call.model, CAPTURE_ERRORS_METRIC)

    def count(self, model: str, metric: str) -> None:
        try:
            directive = {
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [[SERVICE_DIMENSION, MODEL_DIMENSION]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }
            document = {
                "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [directive]},
                SERVICE_DIMENSION: ROUTER_SERVICE,
                MODEL_DIMENSION: model,
                metric: 1,
            }
            self.log_sink(json.dumps(document, separators=(",", ":")))
        except Exception:  # a sink that fails twice has nothing left to count with
            return


class CapturingShipping(ShadowShipping):
    """The shadow's shipping, then capture, after the use case's answer: the one hook ``routes`` calls."""

    def __init__(self, config: ModelsConfig, log_sink: Callable[[str], None], sample_rate: float | None) -> None:
        super().__init__(config, log_sink)
        self.capture = RequestCapture(config, log_sink, sample_rate)

    def infer(
        self, use_case: InferUseCase, call: InferCall, headers: Mapping[str, str], remaining_ms: Callable[[], int]
    ) -> InferOutcome:
        outcome = super().infer(use_case, call, headers, remaining_ms)
        self.capture.record(call, outcome)
        return outcome
