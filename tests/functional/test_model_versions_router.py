"""The router with iris v1 and v2 at 90/10 and a v3 shadow (local/models.rollout.json): each answer names the version
that served it, a pin wins, metadata lists the versions, each version's circuit opens alone, and the metrics
carry the serving version. Real boto3 against a local SageMaker runtime serving both versions' endpoints."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.models import load_models_config
from functions.config.router_settings import RouterSettings
from functions.handlers.router.app import RouterApp, RouterClients, create_app
from local.api_gateway import LocalLambdaContext, build_rest_event
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from local.stack import serverless_endpoints
from tests.helpers.events import HandlerAnswer, answer_of

ROLLOUT_CONFIG = Path(__file__).resolve().parents[2] / "local" / "models.rollout.json"
INFER: dict[str, Any] = {
    "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]
}
URLS = ("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_ENDPOINT_URL_SAGEMAKER")


@pytest.fixture(scope="module")
def two_version_runtime(local_runtime: LocalSageMakerRuntime) -> Iterator[LocalSageMakerRuntime]:
    runtime = LocalSageMakerRuntime(serverless_endpoints(load_models_config(ROLLOUT_CONFIG))).start()
    saved = {name: os.environ[name] for name in URLS}
    os.environ.update(dict.fromkeys(URLS, runtime.url))
    yield runtime
    os.environ.update(saved)
    runtime.stop()


@pytest.fixture
def router(two_version_runtime: LocalSageMakerRuntime) -> Iterator[RouterApp]:
    two_version_runtime.clear_faults()
    yield create_app(RouterSettings(models_config_path=str(ROLLOUT_CONFIG)), None, RouterClients(SageMakerBackend()))
    two_version_runtime.clear_faults()


def call(router: RouterApp, path: str, headers: dict[str, str] | None = None, body: Any = INFER) -> HandlerAnswer:
    raw = json.dumps(body).encode() if body is not None else b""
    method = "POST" if path.endswith("/infer") else "GET"
    event = build_rest_event(method, path, {"Content-Type": "application/json", **(headers or {})}, raw)
    assert event is not None
    return answer_of(router(event, LocalLambdaContext()))


def served_version(answer: HandlerAnswer) -> str:
    assert answer.status == 200, answer.body
    version: str = answer.body["model_version"]
    return version


def test_answers_name_the_version_that_served_them(router: RouterApp) -> None:
    versions = [served_version(call(router, "/v2/models/iris/infer", {"X-Routing-Key": f"k{n}"})) for n in range(200)]
    assert set(versions) == {"1", "2"}
    assert 5 <= versions.count("2") <= 40  # 10% of 200 (sigma 4.2): the e2e test holds the tolerance tightly


def test_a_routing_key_always_meets_the_same_version(router: RouterApp) -> None:
    for n in range(20):
        seen = {
            served_version(call(router, "/v2/models/iris/infer", {"X-Routing-Key": f"sticky-{n}"})) for _ in range(3)
        }
        assert len(seen) == 1


def test_a_version_route_and_a_body_model_version_pin(router: RouterApp) -> None:
    for n in range(10):
        pinned = call(router, "/v2/models/iris/versions/2/infer", {"X-Routing-Key": f"k{n}"})
        assert served_version(pinned) == "2"
        body_pin = call(router, "/v2/models/iris/infer", {"X-Routing-Key": f"k{n}"}, {**INFER, "model_version": "1"})
        assert served_version(body_pin) == "1"
    unknown = call(router, "/v2/models/iris/versions/7/infer")
    assert unknown.status == 404
    assert "versions: '1', '2', '3'" in unknown.body["error"]


def test_metadata_lists_the_versions(router: RouterApp) -> None:
    assert call(router, "/v2/models/iris", body=None).body["versions"] == ["1", "2", "3"]
    assert call(router, "/v2/models/iris/versions/2", body=None).status == 200


def test_each_versions_circuit_opens_alone(router: RouterApp, two_version_runtime: LocalSageMakerRuntime) -> None:
    two_version_runtime.set_fault("iris-v2", FaultSpec(error="ThrottlingException", error_rate=1.0))
    for _ in range(3):  # 3 attempts each: past the default threshold of 5 failures
        assert call(router, "/v2/models/iris/versions/2/infer").status == 503
    calls = two_version_runtime.sync_invocations["iris-v2"]
    refused = call(router, "/v2/models/iris/versions/2/infer")
    assert refused.status == 503
    assert "circuit open" in refused.body["error"]
    assert two_version_runtime.sync_invocations["iris-v2"] == calls  # not called: its circuit is open
    assert served_version(call(router, "/v2/models/iris/versions/1/infer")) == "1"  # iris's circuit stays closed


def test_the_metrics_carry_the_serving_version(
    router: RouterApp, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    capsys.readouterr()
    call(router, "/v2/models/iris/versions/2/infer")
    [document] = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Requests"' in line]
    assert (document["model"], document["version"], document["Requests"]) == ("iris", "2", 1)
    dimensions = [d["Dimensions"] for d in document["_aws"]["CloudWatchMetrics"]]
    assert [["service", "model", "version"]] in dimensions
