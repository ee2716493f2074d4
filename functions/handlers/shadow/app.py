"""The shadow worker's wiring: :func:`create_handler` takes a :class:`functions.domain.shadow.ShadowRunner` and
returns the handler of the CloudWatch Logs subscription on the router's log group.

A subscription event carries the router's shadow lines base64-encoded and gzipped (``awslogs.data``: a JSON
document whose ``logEvents`` hold the lines as ``message``). Each line is replayed against the shadow's
endpoint and counted, one EMF document per line by service, model and the shadow's version:
``ShadowRequests``, ``ShadowAgreements`` (1 when every output agreed), ``ShadowErrors`` and ``ShadowLatency``.
A shadow's failures are counted and logged, never raised: a retried batch would replay every line in it, and
nothing pages on them.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from aws_lambda_powertools import Logger

from functions.config.telemetry import (
    METRICS_NAMESPACE,
    SHADOW_AGREEMENTS_METRIC,
    SHADOW_ERRORS_METRIC,
    SHADOW_LATENCY_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_SERVICE,
)
from functions.domain.shadow import ShadowRequest, ShadowResult, ShadowRunner, shadow_metrics_document

# How long the shadow's endpoint may take per line: a shadow slower than this is counted as an error rather
# than holding the batch. Overridable per stage (SHADOW_TIMEOUT_MS).
DEFAULT_TIMEOUT_MS: Final[int] = 10_000
ShadowHandler = Callable[[dict[str, Any], Any], dict[str, int]]


def subscription_lines(event: Mapping[str, Any]) -> list[str]:
    """The log messages a CloudWatch Logs subscription event carries; none for its control message (sent once
    when the subscription is created, to check the destination)."""
    data = event.get("awslogs", {}).get("data")
    if not isinstance(data, str):
        raise ValueError("not a CloudWatch Logs subscription event: no awslogs.data")
    document = json.loads(gzip.decompress(base64.b64decode(data)))
    if document.get("messageType") != "DATA_MESSAGE":
        return []
    return [entry["message"] for entry in document.get("logEvents", [])]


def result_values(result: ShadowResult) -> dict[str, float]:
    values: dict[str, float] = {SHADOW_REQUESTS_METRIC: 1, SHADOW_ERRORS_METRIC: 0 if result.error is None else 1}
    if result.agreed is not None:
        values[SHADOW_AGREEMENTS_METRIC] = 1 if result.agreed else 0
    if result.latency_ms is not None:
        values[SHADOW_LATENCY_METRIC] = round(result.latency_ms, 3)
    return values


def create_handler(
    runner: ShadowRunner, emit: Callable[[str], None] = print, clock: Callable[[], float] = time.time
) -> ShadowHandler:
    logger = Logger(service=SHADOW_SERVICE)

    def handle_line(line: str) -> ShadowResult | None:
        try:
            request = ShadowRequest.from_line(line)
        except ValueError as error:
            logger.warning("not a shadow line, skipped", extra={"why": str(error)[:200]})
            return None
        result = runner.run(request)
        document = shadow_metrics_document(
            SHADOW_SERVICE,
            result.model,
            result.version,
            result_values(result),
            timestamp_ms=int(clock() * 1000),
            namespace=METRICS_NAMESPACE,
        )
        emit(json.dumps({**document, "correlation_id": request.correlation_id}, separators=(",", ":")))
        where = {"model": result.model, "version": result.version, "correlation_id": request.correlation_id}
        if result.error is not None:
            logger.warning("shadow failed", extra={**where, "why": result.error})
        elif not result.agreed:
            logger.info("shadow disagreed", extra={**where, "outputs": list(result.disagreements)})
        return result

    def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, int]:
        results = [handle_line(line) for line in subscription_lines(event)]
        done = [result for result in results if result is not None]
        return {
            "lines": len(results),
            "shadowed": len(done),
            "agreed": sum(1 for result in done if result.agreed),
            "errors": sum(1 for result in done if result.error is not None),
        }

    return lambda_handler


def timeout_ms(environ: Mapping[str, str] = os.environ) -> int:
    value = environ.get("SHADOW_TIMEOUT_MS")
    return DEFAULT_TIMEOUT_MS if not value else int(value)
