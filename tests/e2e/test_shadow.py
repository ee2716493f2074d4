"""A shadow version over real HTTP against the local stack (iris 1 primary, iris 2 a shadow on its own local
endpoint serving the same artifact): the local log subscriptions hand the router's shadow lines to the in-process
shadow worker and keep every EMF document in the metrics file.

- A failing shadow endpoint leaves every primary answer a 200, byte-identical to the answer with no shadow.
- The shadow sees its sampled share: with p = 0.25 over n = 400 distinct bodies, the count k of shadowed
  requests satisfies |k - np| <= 4 sqrt(np(1 - p)) (= 34.6: a false failure about once in 16,000 runs).
- The shadow agrees with the primary on every request it answered (the same model: agreement 1.0).
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import DEFAULT_CONFIG_PATH
from functions.config.telemetry import (
    SHADOW_AGREEMENTS_METRIC,
    SHADOW_ERRORS_METRIC,
    SHADOW_REQUESTS_METRIC,
    SHADOW_SERVICE,
)
from local.stack import LocalStack, start_local_stack

SAMPLE_RATE = 0.25
REQUESTS = 400
FAILING = 120


def bodies(count: int, offset: int = 0) -> list[bytes]:
    """Distinct valid iris requests (each its own sample decision: the body is the key)."""
    return [
        json.dumps(
            {
                "inputs": [
                    {
                        "name": "input",
                        "shape": [1, 4],
                        "datatype": "FP32",
                        "data": [5.1, 3.5, 1.4, round(0.001 * (offset + index), 3)],
                    }
                ]
            }
        ).encode()
        for index in range(count)
    ]


def infer(stack: LocalStack, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{stack.api.url}/v2/models/iris/infer", data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def put_fault(stack: LocalStack, endpoint: str, spec: dict[str, Any] | None) -> None:
    url = f"{stack.runtime.url}/_local/faults" + (f"/{endpoint}" if spec is not None else "")
    data = json.dumps(spec).encode() if spec is not None else None
    request = urllib.request.Request(url, data=data, method="PUT" if spec is not None else "DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)


def shadow_config(directory: Path) -> Path:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["versions"] = [
        {
            "version": "2",
            "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"},
            "shadow": {"sample_rate": SAMPLE_RATE},
        }
    ]
    path = directory / "models.shadow.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module")
def plain_answers() -> dict[bytes, bytes]:
    """What the router answers with no shadow in the config."""
    stack = start_local_stack(api_port=0, runtime_port=0, async_options=None)
    try:
        answers = {}
        for body in bodies(FAILING, offset=REQUESTS):
            status, answer = infer(stack, body)
            assert status == 200, answer
            answers[body] = answer
        return answers
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def stack(plain_answers: dict[bytes, bytes], tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    directory = tmp_path_factory.mktemp("shadow")
    started = start_local_stack(
        api_port=0,
        runtime_port=0,
        config_path=str(shadow_config(directory)),
        async_options=None,
        metrics_path=directory / "metrics.jsonl",
    )
    try:
        yield started
    finally:
        started.stop()


def shadow_documents(stack: LocalStack) -> list[dict[str, Any]]:
    assert stack.subscriptions is not None
    assert stack.subscriptions.wait_idle(), "the shadow worker did not finish its lines"
    path = stack.subscriptions.metrics_path
    assert path is not None
    documents = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    found = [d for d in documents if d.get("service") == SHADOW_SERVICE and SHADOW_REQUESTS_METRIC in d]
    path.write_text("")  # each test counts its own
    return found


def test_the_shadow_sees_its_sampled_share_and_agrees_with_the_primary(stack: LocalStack) -> None:
    shadow_documents(stack)
    for body in bodies(REQUESTS):
        status, answer = infer(stack, body)
        assert status == 200, answer
    documents = shadow_documents(stack)
    shadowed = len(documents)
    expected = REQUESTS * SAMPLE_RATE
    tolerance = 4 * math.sqrt(expected * (1 - SAMPLE_RATE))
    assert abs(shadowed - expected) <= tolerance, (shadowed, expected, tolerance)
    assert {(d["model"], d["version"]) for d in documents} == {("iris", "2")}
    assert sum(d[SHADOW_ERRORS_METRIC] for d in documents) == 0
    assert sum(d[SHADOW_AGREEMENTS_METRIC] for d in documents) == shadowed, "agreement 1.0: the same model"


def test_the_router_metrics_reach_the_metrics_file(stack: LocalStack) -> None:
    assert infer(stack, bodies(1, offset=10_000)[0])[0] == 200
    assert stack.subscriptions is not None
    assert stack.subscriptions.metrics_path is not None
    stack.subscriptions.wait_idle()
    documents = [json.loads(line) for line in stack.subscriptions.metrics_path.read_text().splitlines()]
    assert any(d.get("service") == "inference-router" and d.get("version") == "1" for d in documents)


def test_a_failing_shadow_leaves_every_primary_answer_a_200_and_unchanged(
    stack: LocalStack, plain_answers: dict[bytes, bytes]
) -> None:
    shadow_documents(stack)
    put_fault(stack, "iris-shadow", {"error": "ModelError"})
    try:
        for body, plain in plain_answers.items():
            status, answer = infer(stack, body)
            assert (status, answer) == (200, plain)
        documents = shadow_documents(stack)
    finally:
        put_fault(stack, "iris-shadow", None)
    assert documents, "some requests were shadowed"
    assert all(d[SHADOW_ERRORS_METRIC] == 1 and SHADOW_AGREEMENTS_METRIC not in d for d in documents)
