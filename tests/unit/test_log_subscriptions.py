"""The local log subscriptions: the router's sink in local mode prints every line, keeps only EMF documents in the
metrics file, and hands shadow lines to the shadow worker thread, whose failures never reach the router."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from functions.config.telemetry import SHADOW_SERVICE
from functions.domain.shadow import ShadowRequest, ShadowResult, ShadowRunner
from local.log_subscriptions import LocalLogSubscriptions, local_metrics_path, subscription_event
from ops.targets import LOCAL_STATE_FILE

ANSWER = json.dumps(
    {"model_name": "iris", "model_version": "1", "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]},
        {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [0.9, 0.05, 0.05]},
    ]}
)  # fmt: skip
EMF = json.dumps({"_aws": {"Timestamp": 1, "CloudWatchMetrics": []}, "service": "inference-router", "Requests": 1})


class Endpoint:
    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls: list[str] = []

    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes:
        self.calls.append(endpoint)
        return self.answer.encode()


def runner(tmp_path: Path, endpoint: Any) -> ShadowRunner:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["versions"] = [
        {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"}, "shadow": {"sample_rate": 1}}
    ]  # fmt: skip
    path = tmp_path / "models.json"
    path.write_text(json.dumps(document))
    return ShadowRunner(load_models_config(path), "", endpoint, 1000)


def shadow_line() -> str:
    return ShadowRequest("iris", "2", "1", "req-1", '{"inputs": []}', ANSWER, 3.0).line()


def test_the_metrics_file_sits_next_to_the_local_state_file() -> None:
    assert local_metrics_path() == LOCAL_STATE_FILE.parent / "metrics.jsonl"


def test_every_line_is_printed_and_only_emf_documents_are_kept(tmp_path: Path) -> None:
    printed: list[str] = []
    sink = LocalLogSubscriptions(None, tmp_path / "state" / "metrics.jsonl", echo=printed.append)
    for line in (EMF, "not json", '{"level": "INFO"}', "[1, 2]", shadow_line()):
        sink(line)
    assert printed == [EMF, "not json", '{"level": "INFO"}', "[1, 2]", shadow_line()]
    assert (tmp_path / "state" / "metrics.jsonl").read_text() == EMF + "\n"
    assert sink.queued == 0, "no shadow worker: nothing is queued"


def test_without_a_metrics_path_nothing_is_written(tmp_path: Path) -> None:
    sink = LocalLogSubscriptions(None, None, echo=lambda _: None)
    sink(EMF)
    assert sink.metrics_path is None
    assert not list(tmp_path.iterdir())


def test_a_shadow_line_is_replayed_by_the_worker_and_its_metrics_kept(tmp_path: Path) -> None:
    endpoint = Endpoint(ANSWER)
    metrics = tmp_path / "metrics.jsonl"
    sink = LocalLogSubscriptions(runner(tmp_path, endpoint), metrics, echo=lambda _: None)
    try:
        sink(shadow_line())
        assert sink.wait_idle(10)
    finally:
        sink.stop()
    assert endpoint.calls == ["iris-shadow"]
    [document] = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert (document["service"], document["model"], document["version"]) == (SHADOW_SERVICE, "iris", "2")
    assert (document["ShadowRequests"], document["ShadowAgreements"], document["ShadowErrors"]) == (1, 1, 0)


class BrokenRunner(ShadowRunner):
    def run(self, request: ShadowRequest) -> ShadowResult:
        raise RuntimeError("worker crashed")


def test_a_worker_failure_is_printed_and_the_worker_goes_on(tmp_path: Path) -> None:
    printed: list[str] = []
    config = runner(tmp_path, Endpoint(ANSWER)).config
    sink = LocalLogSubscriptions(BrokenRunner(config, "", Endpoint(ANSWER), 1000), None, echo=printed.append)
    try:
        sink(shadow_line())
        sink(shadow_line())
        assert sink.wait_idle(10)
    finally:
        sink.stop()
    errors = [json.loads(line) for line in printed if "shadow_worker_error" in line]
    assert errors == [{"shadow_worker_error": "RuntimeError: worker crashed"}] * 2
    assert (sink.queued, sink.handled) == (2, 2)


def test_wait_idle_gives_up_after_its_timeout(tmp_path: Path) -> None:
    sink = LocalLogSubscriptions(None, None, echo=lambda _: None)
    sink.queued = 1  # a line the worker never finishes
    assert not sink.wait_idle(0.05)


def test_the_subscription_event_decodes_as_the_worker_reads_it() -> None:
    from functions.handlers.shadow.app import subscription_lines

    assert subscription_lines(subscription_event(["a", "b"])) == ["a", "b"]
