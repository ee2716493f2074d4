"""The router's per-version view for CodeDeploy's rollback alarms: Requests, ServerErrors and Latency by
service and router_version, the published version serving the request (AWS_LAMBDA_FUNCTION_VERSION)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from functions.config.api_routes import MODEL_INFER
from functions.config.models import load_models_config
from functions.handlers.router.request_metrics import RequestMetrics

BY_ROUTER_VERSION = [["service", "router_version"]]
INFER = {"resource": MODEL_INFER.resource, "pathParameters": {"model": "iris"}}


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")


def one_document(event: dict[str, Any], status: int, **options: Any) -> dict[str, Any]:
    lines: list[str] = []
    metrics = RequestMetrics(load_models_config(), {}, cold_start=False, emit=lines.append, **options)
    metrics.measured(lambda _event, _context: {"statusCode": status})(event, None)
    [line] = lines
    document: dict[str, Any] = json.loads(line)
    return document


def by_version(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for d in document["_aws"]["CloudWatchMetrics"] if d["Dimensions"] == BY_ROUTER_VERSION]


def test_a_503_of_version_7_counts_as_its_server_error_with_its_latency() -> None:
    """A wrong endpoint name is a 503 the router answers, not a Lambda error: this is what sees it."""
    document = one_document(INFER, 503, router_version="7")
    [directive] = by_version(document)
    assert directive["Namespace"] == "InferenceRouter"
    assert directive["Metrics"] == [
        {"Name": "Requests", "Unit": "Count"},
        {"Name": "ServerErrors", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds"},
    ]
    assert (document["router_version"], document["Requests"], document["ServerErrors"]) == ("7", 1, 1)
    assert document["Latency"] >= 0


def test_the_version_comes_from_the_lambda_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_VERSION", "12")
    document = one_document(INFER, 200)
    assert len(by_version(document)) == 1
    assert (document["router_version"], document["ServerErrors"]) == ("12", 0)


def test_latest_is_never_published_by_version(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local mode and unqualified invokes run $LATEST, which CodeDeploy never deploys."""
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_VERSION", raising=False)
    document = one_document(INFER, 200)
    assert by_version(document) == []
    assert "router_version" not in document


def test_a_request_that_is_not_an_infer_request_has_no_version_view() -> None:
    lines: list[str] = []
    metrics = RequestMetrics(load_models_config(), {}, cold_start=True, emit=lines.append, router_version="7")
    metrics.measured(lambda _event, _context: {"statusCode": 200})({"resource": "/v2/health/live"}, None)
    [line] = lines  # the cold start's document
    assert by_version(json.loads(line)) == []
