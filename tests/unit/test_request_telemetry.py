"""Following one request and measuring it: the latency targets the router reads, the custom attributes it
sends SageMaker, and the request document's arithmetic on a fake clock."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from functions.adapters.sagemaker import CUSTOM_ATTRIBUTES_MAX_CHARS, SageMakerBackend, custom_attributes
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings, SettingsError
from functions.handlers.router.request_metrics import RequestMetrics, metrics_disabled


@pytest.mark.parametrize(
    ("raw", "targets"),
    [(None, {}), ("", {}), ('{"iris": 250}', {"iris": 250.0}), ('{"iris": 0.5, "bert": 1200}', {"iris": 0.5, "bert": 1200.0})],
)  # fmt: skip
def test_latency_targets_are_read_from_the_environment(raw: str | None, targets: dict[str, float]) -> None:
    environ = {} if raw is None else {"LATENCY_TARGETS_MS": raw}
    assert RouterSettings.from_env(environ).latency_targets_ms == targets


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{", "not JSON"),
        ("[250]", "must be a JSON object"),
        ('{"iris": 0}', "'iris' must be a positive number"),
        ('{"iris": -5}', "'iris' must be a positive number"),
        ('{"iris": true}', "'iris' must be a positive number"),
        ('{"iris": "250"}', "'iris' must be a positive number"),
        ('{"iris": NaN}', "'iris' must be a positive number"),
        ('{"iris": Infinity}', "'iris' must be a positive number"),
    ],
)
def test_a_latency_target_the_router_cannot_use_is_refused_at_cold_start(raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        RouterSettings.from_env({"LATENCY_TARGETS_MS": raw})


def test_the_correlation_id_is_a_custom_attribute() -> None:
    assert custom_attributes("c6af9ac6-7b61-11e6-9a41-93e8deadbeef") == {
        "CustomAttributes": "correlation_id=c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    }


@pytest.mark.parametrize(
    "correlation_id",
    [None, "", "line\nbreak", "caf\u00e9", "x" * (CUSTOM_ATTRIBUTES_MAX_CHARS - len("correlation_id=") + 1)],
)
def test_an_id_sagemaker_would_refuse_is_not_sent(correlation_id: str | None) -> None:
    assert custom_attributes(correlation_id) == {}


def test_the_longest_id_sagemaker_takes_is_sent() -> None:
    correlation_id = "x" * (CUSTOM_ATTRIBUTES_MAX_CHARS - len("correlation_id="))
    assert len(custom_attributes(correlation_id)["CustomAttributes"]) == CUSTOM_ATTRIBUTES_MAX_CHARS


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def invoke_endpoint(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("invoke_endpoint", kwargs))
        return {"Body": io.BytesIO(b"{}")}

    def invoke_endpoint_async(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("invoke_endpoint_async", kwargs))
        return {"OutputLocation": "s3://b/output/x.out"}


def test_both_calls_carry_the_correlation_id_and_the_async_one_the_job_id_as_inference_id() -> None:
    client = RecordingClient()
    backend = SageMakerBackend(lambda _: client)
    backend.invoke("iris", b"{}", attempt_ms=lambda: 2000, correlation_id="req-1")
    backend.invoke_async("iris-async", "s3://b/input/x.json", "a" * 32, timeout_ms=2000, invocation_timeout_s=900,
                         request_ttl_s=3600, correlation_id="req-2")  # fmt: skip
    backend.invoke("iris", b"{}", attempt_ms=lambda: 2000)
    (_, sync), (_, queued), (_, anonymous) = client.calls
    assert sync["CustomAttributes"] == "correlation_id=req-1"
    assert (queued["CustomAttributes"], queued["InferenceId"]) == ("correlation_id=req-2", "a" * 32)
    assert "CustomAttributes" not in anonymous


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def infer_event(model: str = "iris") -> dict[str, Any]:
    return {
        "resource": "/v2/models/{model}/infer",
        "pathParameters": {"model": model},
        "requestContext": {"requestId": "req-1"},
    }


@pytest.mark.parametrize(("latency_s", "slow"), [(0.25, 0), (0.2501, 1)])
def test_the_document_measures_the_request_on_the_clock(latency_s: float, slow: int) -> None:
    clock, lines = Clock(), []
    metrics = RequestMetrics(
        load_models_config(), {"iris": 250}, cold_start=False, clock=clock, wall_clock=lambda: 1.5, emit=lines.append
    )

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with metrics.endpoint_call("serverless"):
            clock.now += 0.1
        clock.now += latency_s - 0.1
        return {"statusCode": 200, "headers": {}}

    metrics.measured(handler)(infer_event(), None)
    [document] = [json.loads(line) for line in lines]
    assert document["_aws"]["Timestamp"] == 1500
    assert document["Latency"] == pytest.approx(latency_s * 1000)
    assert document["EndpointLatency"] == pytest.approx(100)
    assert document["SlowRequests"] == slow


def test_a_handler_that_raises_writes_no_document_and_leaves_no_request_behind() -> None:
    lines: list[str] = []
    metrics = RequestMetrics(load_models_config(), {}, cold_start=False, emit=lines.append)

    def failing(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        metrics.measured(failing)(infer_event(), None)
    with metrics.endpoint_call("serverless"):
        pass  # no request in flight: nothing to add to
    assert lines == []


@pytest.mark.parametrize(
    ("environ", "disabled"),
    [
        ({}, False),
        ({"POWERTOOLS_METRICS_DISABLED": "true"}, True),
        ({"POWERTOOLS_METRICS_DISABLED": "false", "POWERTOOLS_DEV": "true"}, False),
        ({"POWERTOOLS_DEV": "true"}, True),
    ],
)
def test_metrics_are_disabled_by_powertools_rule(environ: dict[str, str], disabled: bool) -> None:
    assert metrics_disabled(environ) is disabled
