"""The router's per-request metrics: one EMF document per infer request, read back from stdout as CloudWatch
would, for each kind of answer (the router through real boto3 against the local SageMaker runtime)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.router_settings import RouterSettings
from functions.config.telemetry import METRICS_NAMESPACE, ROUTER_SERVICE
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.model_variants import write_models_with_variants
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from tests.helpers.events import HandlerAnswer, answer_of, load_event

ROW = [5.1, 3.5, 1.4, 0.2]
STATIC = {"outputs": [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]}
NO_RETRY = {"retry": {"max_attempts": 1, "base_delay_ms": 5, "max_delay_ms": 20}}
REQUEST_METRICS = ["Requests", "ServerErrors", "ClientErrors", "DegradedRequests", "SlowRequests", "Latency"]
BY_MODEL = ["service", "model"]
BY_ROUTE = ["service", "model", "route"]
BY_VERSION = ["service", "model", "version"]


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """iris, iris-static (a declared fallback) and iris-local (in the router), all without retries."""
    return write_models_with_variants(
        tmp_path_factory.mktemp("metrics"),
        {
            "iris": {"resilience": NO_RETRY},
            "iris-static": {"resilience": {**NO_RETRY, "fallback": {"static": STATIC}}},
            "iris-local": {"route": {"sync": "lambda"}},
        },
    )


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch, local_runtime: LocalSageMakerRuntime) -> Iterator[None]:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    local_runtime.clear_faults()
    yield
    local_runtime.clear_faults()


def new_router(config: Path, backend: SageMakerBackend, **settings: Any) -> RouterApp:
    return create_app(RouterSettings(models_config_path=str(config), **settings), None, RouterClients(backend))


@pytest.fixture
def router(config_path: Path, sagemaker_backend: SageMakerBackend) -> RouterApp:
    return new_router(config_path, sagemaker_backend)


def infer_event(model: str, body: Any = None) -> dict[str, Any]:
    document = body or {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
    event = build_rest_event(
        "POST", f"/v2/models/{model}/infer", {"Content-Type": "application/json"}, json.dumps(document).encode()
    )
    assert event is not None
    return event


def emf_documents(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws"')]


def call(router: RouterApp, event: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[HandlerAnswer, Any]:
    """The answer and the one document the call wrote (it fails on two, or on one without the request's)."""
    capsys.readouterr()
    answer = answer_of(router(event, LocalLambdaContext()))
    [document] = emf_documents(capsys.readouterr().out)
    assert "Requests" in document
    return answer, document


def request_directive(document: dict[str, Any]) -> dict[str, Any]:
    [directive] = [d for d in document["_aws"]["CloudWatchMetrics"] if d["Dimensions"][0] == BY_MODEL]
    assert directive["Namespace"] == METRICS_NAMESPACE
    return directive


def metric_names(document: dict[str, Any]) -> list[str]:
    return [metric["Name"] for metric in request_directive(document)["Metrics"]]


def counts(document: dict[str, Any]) -> dict[str, int]:
    return {name: document[name] for name in REQUEST_METRICS if name != "Latency"}


def test_a_200_is_one_document_by_model_and_route_with_the_endpoint_time(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    event = infer_event("iris")
    answer, document = call(router, event, capsys)
    assert answer.status == 200
    assert request_directive(document)["Dimensions"] == [BY_MODEL, BY_ROUTE]
    assert (document["service"], document["model"], document["route"]) == (ROUTER_SERVICE, "iris", "serverless")
    assert counts(document) == {"Requests": 1, "ServerErrors": 0, "ClientErrors": 0, "DegradedRequests": 0,
                                "SlowRequests": 0}  # fmt: skip
    assert metric_names(document) == [*REQUEST_METRICS, "EndpointLatency"]
    assert 0 < document["EndpointLatency"] <= document["Latency"]
    assert (document["status"], document["correlation_id"]) == (200, event["requestContext"]["requestId"])


def test_the_cold_start_is_counted_once_in_the_first_document(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    _, first = call(router, infer_event("iris"), capsys)
    _, second = call(router, infer_event("iris"), capsys)
    [cold] = [d for d in first["_aws"]["CloudWatchMetrics"] if d["Dimensions"] == [["service"]]]
    assert cold["Metrics"] == [{"Name": "Requests", "Unit": "Count"}, {"Name": "ColdStarts", "Unit": "Count"}]
    assert first["ColdStarts"] == 1
    assert "ColdStarts" not in second
    [warm] = [d for d in second["_aws"]["CloudWatchMetrics"] if d["Dimensions"] == [["service"]]]
    assert warm["Metrics"] == [{"Name": "Requests", "Unit": "Count"}]


def test_every_infer_request_is_also_counted_by_service_alone(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stage's total (a 404 for a model it does not hold included) needs no SEARCH over the models."""
    call(router, infer_event("iris"), capsys)  # the cold start's document
    for model in ("iris", "iris-local", "nope"):
        _, document = call(router, infer_event(model), capsys)
        directives = document["_aws"]["CloudWatchMetrics"]
        # The version set comes with a version that served: a model the router does not hold has none.
        assert [d["Dimensions"] for d in directives] == (
            [[BY_MODEL, BY_ROUTE], [BY_VERSION], [["service"]]] if model != "nope" else [[BY_MODEL], [["service"]]]
        )
        assert directives[-1]["Metrics"] == [{"Name": "Requests", "Unit": "Count"}]
        assert (document["service"], document["Requests"]) == (ROUTER_SERVICE, 1)


def test_a_cold_start_before_a_non_infer_request_is_its_only_document(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert answer_of(router(load_event("apigw_health_live"), LocalLambdaContext())).status == 200
    assert answer_of(router(load_event("apigw_health_live"), LocalLambdaContext())).status == 200
    [document] = emf_documents(capsys.readouterr().out)
    assert document["ColdStarts"] == 1
    assert "Requests" not in document


def test_an_environment_initialised_for_provisioned_concurrency_counts_no_cold_start(
    config_path: Path, sagemaker_backend: SageMakerBackend, capsys: pytest.CaptureFixture[str]
) -> None:
    router = new_router(config_path, sagemaker_backend, provisioned_init=True)
    _, document = call(router, infer_event("iris"), capsys)
    assert "ColdStarts" not in document


def test_a_400_is_a_client_error_without_endpoint_time(router: RouterApp, capsys: pytest.CaptureFixture[str]) -> None:
    answer, document = call(router, infer_event("iris", {"inputs": [{"name": "input", "shape": [2, 4],
                                                                      "datatype": "FP32", "data": ROW}]}), capsys)  # fmt: skip
    assert answer.status == 400
    assert counts(document)["ClientErrors"] == 1
    assert document["ServerErrors"] == 0
    assert "EndpointLatency" not in document
    assert "EndpointLatency" not in metric_names(document)
    assert document["route"] == "serverless"


def test_an_unknown_model_is_counted_under_one_bounded_name_without_a_route(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    answer, document = call(router, infer_event("no-such-model-" + "x" * 200), capsys)
    assert answer.status == 404
    assert document["model"] == "-"
    assert "route" not in document
    assert request_directive(document)["Dimensions"] == [BY_MODEL]
    assert document["ClientErrors"] == 1


def test_a_503_is_a_server_error_with_the_failed_calls_time(
    router: RouterApp, local_runtime: LocalSageMakerRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ThrottlingException", error_rate=1.0))
    answer, document = call(router, infer_event("iris"), capsys)
    assert answer.status == 503
    assert counts(document) == {"Requests": 1, "ServerErrors": 1, "ClientErrors": 0, "DegradedRequests": 0,
                                "SlowRequests": 0}  # fmt: skip
    assert document["EndpointLatency"] > 0
    assert document["route"] == "serverless"


def test_a_degraded_answer_is_a_200_counted_degraded(
    router: RouterApp, local_runtime: LocalSageMakerRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    local_runtime.set_fault("iris", FaultSpec(error="ModelNotReadyException", error_rate=1.0))
    answer, document = call(router, infer_event("iris-static"), capsys)
    assert (answer.status, "X-Inference-Degraded" in answer.headers) == (200, True)
    assert (document["model"], document["route"]) == ("iris-static", "serverless")
    assert (document["DegradedRequests"], document["ServerErrors"]) == (1, 0)
    # DegradedAnswers by how and why rides in the same document, under the dimensions the dashboards search.
    [degraded] = [d for d in document["_aws"]["CloudWatchMetrics"] if d["Metrics"][0]["Name"] == "DegradedAnswers"]
    assert degraded["Dimensions"] == [["service", "model", "reason", "cause"]]
    assert (document["DegradedAnswers"], document["reason"], document["cause"]) == (
        1, "static-fallback", "model-not-ready",
    )  # fmt: skip


def test_a_model_in_the_router_is_the_lambda_route(router: RouterApp, capsys: pytest.CaptureFixture[str]) -> None:
    answer, document = call(router, infer_event("iris-local"), capsys)
    assert answer.status == 200
    assert (document["model"], document["route"]) == ("iris-local", "lambda")
    assert 0 < document["EndpointLatency"] <= document["Latency"]


@pytest.mark.parametrize(
    ("targets", "slow"),
    [
        ({"iris": 0.001}, 1),
        ({"iris": 60_000}, 0),
        ({"other": 0.001}, 0),
        ({"*": 0.001}, 1),  # the stage default
        ({"*": 0.001, "iris": 60_000}, 0),  # the model's own target wins
    ],
)
def test_a_request_over_its_models_latency_target_is_slow(
    config_path: Path,
    sagemaker_backend: SageMakerBackend,
    capsys: pytest.CaptureFixture[str],
    targets: dict[str, float],
    slow: int,
) -> None:
    router = new_router(config_path, sagemaker_backend, latency_targets_ms=targets)
    _, document = call(router, infer_event("iris"), capsys)
    assert document["SlowRequests"] == slow


def test_the_last_resort_500_is_counted_as_a_server_error(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    event = {**infer_event("iris"), "headers": ["Prefer", "respond-async"]}  # not a mapping: the resolver fails
    answer, document = call(router, event, capsys)
    assert answer.status == 500
    assert (document["model"], document["ServerErrors"], document["status"]) == ("iris", 1, 500)
    [by_service] = [d for d in document["_aws"]["CloudWatchMetrics"] if d["Dimensions"] == [["service"]]]
    assert {"Name": "UnhandledErrors", "Unit": "Count"} in by_service["Metrics"]
    assert document["UnhandledErrors"] == 1


def test_the_last_resort_500_of_another_route_is_its_only_document(
    router: RouterApp, capsys: pytest.CaptureFixture[str]
) -> None:
    router(load_event("apigw_health_live"), LocalLambdaContext())  # the cold start's document
    capsys.readouterr()
    answer = answer_of(router(["not", "an", "event"], LocalLambdaContext()))  # type: ignore[arg-type]
    assert answer.status == 500
    [document] = emf_documents(capsys.readouterr().out)
    assert document["UnhandledErrors"] == 1
    assert "Requests" not in document
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


def test_metrics_disabled_writes_no_document(
    router: RouterApp, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    capsys.readouterr()
    assert answer_of(router(infer_event("iris"), LocalLambdaContext())).status == 200
    assert emf_documents(capsys.readouterr().out) == []


def test_the_container_logs_the_request_id_the_router_sent(
    router: RouterApp, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    event = infer_event("iris")
    with caplog.at_level(logging.INFO, logger="serving.service"):
        answer, _ = call(router, event, capsys)
    assert answer.status == 200
    logged = [record.getMessage() for record in caplog.records if record.name == "serving.service"]
    assert any(f"'correlation_id={event['requestContext']['requestId']}'" in line for line in logged), logged
