"""Output checks through the router handler (its factory) against the local runtime's answer fault: an iris
answer outside its contract is a 502 naming the output and check, counted as OutputContractViolations; a static
fallback answers it instead, marked degraded output-contract; last-good never stores a breach."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.adapters.sagemaker import SageMakerBackend
from functions.config.telemetry import ROUTER_SERVICE
from functions.handlers.router.app import RouterApp
from local.sagemaker_runtime import FaultSpec, LocalSageMakerRuntime
from tests.functional.test_resilience_faults import FAST_RETRY, infer, new_router, variants_config

GOOD = [0.9, 0.05, 0.05]


def answer_with(probabilities: str) -> str:
    return (
        '{"model_name":"iris","model_version":"1","outputs":[{"name":"label","datatype":"INT64","shape":[1],'
        f'"data":[0]}},{{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":{probabilities}}}]}}'
    )


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return variants_config(tmp_path_factory.mktemp("contract"), FAST_RETRY)


@pytest.fixture
def router(config_path: Path, sagemaker_backend: SageMakerBackend) -> RouterApp:
    return new_router(config_path, sagemaker_backend)


@pytest.fixture(autouse=True)
def clean(local_runtime: LocalSageMakerRuntime) -> Iterator[None]:
    local_runtime.clear_faults()
    yield
    local_runtime.clear_faults()


@pytest.mark.parametrize(
    ("probabilities", "check", "detail"),
    [
        ("[0.1,1.7,0.1]", "range", "output 'probabilities' fails the range check: element [0, 1] is 1.7"),
        ("[NaN,0.5,0.5]", "finite", "output 'probabilities' fails the finite check: element [0, 0] is nan"),
        ("[0.5,0.2,0.1]", "sum_to_one", "output 'probabilities' fails the sum_to_one check: [0, :] sums to 0.8"),
    ],
)
def test_an_answer_outside_the_contract_is_a_502_and_counted(
    router: RouterApp,
    local_runtime: LocalSageMakerRuntime,
    capsys: pytest.CaptureFixture[str],
    probabilities: str,
    check: str,
    detail: str,
) -> None:
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with(probabilities)))
    status, headers, body = infer(router, "iris")
    assert status == 502
    assert body["error"].startswith("model 'iris' answered outside its contract: ")
    assert detail in body["error"]
    assert "X-Inference-Degraded" not in headers
    documents = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if '"OutputContractViolations"' in line
    ]
    assert [(doc["service"], doc["model"], doc["check"]) for doc in documents] == [(ROUTER_SERVICE, "iris", check)]


def test_a_static_fallback_answers_a_breach_marked_degraded(
    router: RouterApp, local_runtime: LocalSageMakerRuntime
) -> None:
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with("[0.1,1.7,0.1]")))
    status, headers, body = infer(router, "iris-static")
    assert status == 200
    assert headers["X-Inference-Degraded"].startswith("output-contract; ")
    assert body["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]


def test_last_good_never_stores_a_breach(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with("[0.1,1.7,0.1]")))
    assert infer(router, "iris-last-good")[0] == 502  # nothing good cached yet, and the breach is not stored
    local_runtime.set_fault("iris", FaultSpec(error="InternalFailure"))
    assert infer(router, "iris-last-good")[0] == 503  # had the breach been stored, it would answer here
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with(json.dumps(GOOD))))
    assert infer(router, "iris-last-good")[0] == 200
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with("[0.5,0.2,0.1]")))
    status, headers, body = infer(router, "iris-last-good")
    assert (status, headers["X-Inference-Degraded"]) == (200, "output-contract; last-good")
    assert body["outputs"][1]["data"] == GOOD


def test_a_good_answer_passes_untouched(router: RouterApp, local_runtime: LocalSageMakerRuntime) -> None:
    local_runtime.set_fault("iris", FaultSpec(answer_body=answer_with(json.dumps(GOOD))))
    status, headers, body = infer(router, "iris")
    assert (status, "X-Inference-Degraded" in headers) == (200, False)
    assert body["outputs"][1]["data"] == GOOD
