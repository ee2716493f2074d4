"""A metrics.jsonl as the local log subscriptions write it, with hand-computable numbers, for the rollout view.

iris 1: 100 requests, latencies 1..100 ms, 3 server errors -> 5xx rate 3%, nearest-rank p99 = 99 ms.
iris 2: 10 requests, nine at 5 ms and one at 500 ms, 1 server error -> 10%, p99 = 500 ms.
iris 3 (shadow): 4 shadowed, 1 error, agreements 1, 1, 0 -> 66.67%; shadow latencies 10, 20, 30 -> p99 30 ms.
Also: a stale document (outside any window), a document without the version dimension set, a non-JSON line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from functions.config.telemetry import METRICS_NAMESPACE, ROUTER_SERVICE, SHADOW_SERVICE

VERSIONED = ["service", "model", "version"]
TWO_VERSIONS_PLUS_SHADOW: dict[str, Any] = {
    "models": [
        {
            "name": "iris",
            "version": "1",
            "route": {"sync": "serverless", "serverless_endpoint": "iris"},
            "versions": [
                {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}},
                {"version": "3", "route": {"sync": "serverless", "serverless_endpoint": "iris-v3"},
                 "shadow": {"sample_rate": 0.25}},
            ],
            "traffic": {"1": 90, "2": 10},
        },
        {"name": "digits", "version": "1", "route": {"sync": "lambda"}},
    ]
}  # fmt: skip


def emf(service: str, version: str, timestamp_ms: int, dimensions: list[str] | None = None, **values: Any) -> str:
    document = {
        "_aws": {
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [dimensions or VERSIONED],
                    "Metrics": [{"Name": name} for name in values],
                }
            ],
        },
        "service": service,
        "model": "iris",
        "version": version,
        **values,
    }
    return json.dumps(document)


def write_metrics(path: Path, now_ms: int) -> Path:
    lines: list[str] = []
    for index in range(100):
        lines.append(emf(ROUTER_SERVICE, "1", now_ms - 1000, Requests=1, ServerErrors=int(index < 3),
                         Latency=float(index + 1)))  # fmt: skip
    for index in range(10):
        lines.append(emf(ROUTER_SERVICE, "2", now_ms - 1000, Requests=1, ServerErrors=int(index == 0),
                         Latency=500.0 if index == 9 else 5.0))  # fmt: skip
    for agreed, latency in ((1, 10.0), (1, 20.0), (0, 30.0)):
        lines.append(emf(SHADOW_SERVICE, "3", now_ms - 1000, ShadowRequests=1, ShadowErrors=0,
                         ShadowAgreements=agreed, ShadowLatency=latency))  # fmt: skip
    lines.append(emf(SHADOW_SERVICE, "3", now_ms - 1000, ShadowRequests=1, ShadowErrors=1))
    lines.append(emf(ROUTER_SERVICE, "1", now_ms - 10 * 3600 * 1000, Requests=50, ServerErrors=50, Latency=9999.0))
    lines.append(emf(ROUTER_SERVICE, "1", now_ms - 1000, ["service", "model"], Requests=7, Latency=8888.0))
    lines.append("router started")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
