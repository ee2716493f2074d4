"""The deployed rollout view's numbers: one GetMetricData call over the window for every model version.

Each metric is asked for as a single period as long as the window, so a count comes back summed, a p99 as
CloudWatch computes it over the window, and the shadow's agreement as the average of its 0/1 datapoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from functions.config.telemetry import (
    LATENCY_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTER_SERVICE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SHADOW_AGREEMENTS_METRIC,
    SHADOW_ERRORS_METRIC,
    SHADOW_LATENCY_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_SERVICE,
    VERSION_DIMENSION,
)
from ops.rollout.summary import VersionPlan, VersionStats

# (stats field, service, metric, statistic)
QUERIES: Final[tuple[tuple[str, str, str, str], ...]] = (
    ("requests", ROUTER_SERVICE, REQUESTS_METRIC, "Sum"),
    ("server_errors", ROUTER_SERVICE, SERVER_ERRORS_METRIC, "Sum"),
    ("latency_p99_ms", ROUTER_SERVICE, LATENCY_METRIC, "p99"),
    ("shadow_requests", SHADOW_SERVICE, SHADOW_REQUESTS_METRIC, "Sum"),
    ("shadow_errors", SHADOW_SERVICE, SHADOW_ERRORS_METRIC, "Sum"),
    ("shadow_agreement", SHADOW_SERVICE, SHADOW_AGREEMENTS_METRIC, "Average"),
    ("shadow_latency_p99_ms", SHADOW_SERVICE, SHADOW_LATENCY_METRIC, "p99"),
)
# GetMetricData takes at most 500 queries a call.
MAX_QUERIES: Final[int] = 500


def metric_queries(
    plans: Mapping[str, Sequence[VersionPlan]], *, window_s: int
) -> tuple[list[dict[str, Any]], dict[str, tuple[str, str, str]]]:
    """The MetricDataQueries, and query id -> (model, version, stats field)."""
    queries: list[dict[str, Any]] = []
    meaning: dict[str, tuple[str, str, str]] = {}
    for model, versions in plans.items():
        for plan in versions:
            for field_name, service, metric, statistic in QUERIES:
                query_id = f"q{len(queries)}"
                meaning[query_id] = (model, plan.version, field_name)
                queries.append(
                    {
                        "Id": query_id,
                        "MetricStat": {
                            "Metric": {
                                "Namespace": METRICS_NAMESPACE,
                                "MetricName": metric,
                                "Dimensions": [
                                    {"Name": SERVICE_DIMENSION, "Value": service},
                                    {"Name": MODEL_DIMENSION, "Value": model},
                                    {"Name": VERSION_DIMENSION, "Value": plan.version},
                                ],
                            },
                            "Period": window_s,
                            "Stat": statistic,
                        },
                        "ReturnData": True,
                    }
                )
    return queries, meaning


def cloudwatch_stats(
    cloudwatch: Any, plans: Mapping[str, Sequence[VersionPlan]], *, end: datetime, window_minutes: int
) -> dict[tuple[str, str], VersionStats]:
    """(model, version) -> stats over the ``window_minutes`` before ``end``, from the InferenceRouter namespace."""
    window_s = window_minutes * 60
    queries, meaning = metric_queries(plans, window_s=window_s)
    stats: dict[tuple[str, str], VersionStats] = {}
    for first in range(0, len(queries), MAX_QUERIES):
        token: str | None = None
        while True:
            request: dict[str, Any] = {
                "MetricDataQueries": queries[first : first + MAX_QUERIES],
                "StartTime": end - timedelta(seconds=window_s),
                "EndTime": end,
            }
            if token:
                request["NextToken"] = token
            response = cloudwatch.get_metric_data(**request)
            for result in response["MetricDataResults"]:
                model, version, field_name = meaning[result["Id"]]
                values = result.get("Values", [])
                if not values:
                    continue
                entry = stats.setdefault((model, version), VersionStats())
                summed = field_name in {"requests", "server_errors", "shadow_requests", "shadow_errors"}
                setattr(entry, field_name, float(sum(values)) if summed else float(max(values)))
            token = response.get("NextToken")
            if not token:
                break
    return stats
