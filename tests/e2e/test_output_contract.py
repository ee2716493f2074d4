"""Output checks over real HTTP against the local stack: iris's endpoint, made to answer outside iris's declared
contract by the local runtime's answer fault (``PUT /_local/faults/<endpoint>``), never reaches the caller.

- A probability of 1.7, a NaN (JSON cannot carry one: ``answer_body``) and a row summing to 0.8 are each a 502
  naming ``probabilities`` and the check (range, finite, sum_to_one); the same request answers 200 once the
  fault is cleared.
- A model with a static fallback answers the fallback instead: 200, ``X-Inference-Degraded: output-contract;
  static-fallback``.
- An async job (``Prefer: respond-async``) whose result breaks the contract ends ``failed``, and
  ``GET /v2/jobs/{id}`` gives the breach as its error and no result.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from local.model_variants import write_models_with_variants
from local.stack import LocalStack, start_local_stack

pytestmark = pytest.mark.e2e

BODY = json.dumps(
    {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
).encode()
STATIC = {"outputs": [
    {"name": "label", "datatype": "INT64", "shape": [1], "data": [0]},
    {"name": "probabilities", "datatype": "FP32", "shape": [1, 3], "data": [1.0, 0.0, 0.0]},
]}  # fmt: skip
FAST_RETRY = {"max_attempts": 2, "base_delay_ms": 5, "max_delay_ms": 10}


def answer_body(probabilities: str) -> str:
    """An iris answer as the endpoint would send it, with ``probabilities`` as given (JSON text, NaN allowed)."""
    return (
        '{"model_name":"iris","model_version":"1","outputs":[{"name":"label","datatype":"INT64","shape":[1],'
        f'"data":[0]}},{{"name":"probabilities","datatype":"FP32","shape":[1,3],"data":{probabilities}}}]}}'
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # iris as the default config has it (no fallback), and iris-static: the same endpoints, a static fallback.
    config = write_models_with_variants(
        tmp_path_factory.mktemp("config"),
        {"iris-static": {"resilience": {"retry": FAST_RETRY, "fallback": {"static": STATIC}}}},
    )
    local = start_local_stack(api_port=0, config_path=str(config))
    yield local
    local.stop()


@pytest.fixture(autouse=True)
def no_faults(stack: LocalStack) -> Iterator[None]:
    yield
    put_fault(stack, None, None)


def put_fault(stack: LocalStack, endpoint: str | None, spec: dict[str, Any] | None) -> None:
    """``spec`` on ``endpoint`` over the runtime's HTTP fault API; None clears every fault."""
    url = f"{stack.runtime.url}/_local/faults" + (f"/{endpoint}" if spec is not None else "")
    data = json.dumps(spec).encode() if spec is not None else None
    request = urllib.request.Request(url, data=data, method="PUT" if spec is not None else "DELETE")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204)


def call(
    stack: LocalStack, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        stack.api.url + path, data=body, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


@pytest.mark.parametrize(
    ("fault", "detail"),
    [
        (
            {"answer": json.loads(answer_body("[0.1, 1.7, 0.1]"))},
            "output 'probabilities' fails the range check: element [0, 1] is 1.7, above the maximum 1",
        ),
        ({"answer_body": answer_body("[NaN, 0.5, 0.5]")}, "output 'probabilities' fails the finite check: element"),
        (
            {"answer": json.loads(answer_body("[0.5, 0.2, 0.1]"))},
            "output 'probabilities' fails the sum_to_one check: [0, :] sums to 0.8, not 1 within 0.001",
        ),
    ],
    ids=["range", "finite", "sum_to_one"],
)
def test_an_answer_outside_the_contract_is_a_502_naming_output_and_check(
    stack: LocalStack, fault: dict[str, Any], detail: str
) -> None:
    put_fault(stack, "iris", fault)
    status, headers, body = call(stack, "POST", "/v2/models/iris/infer", BODY)
    assert status == 502, body
    assert body["error"].startswith("model 'iris' answered outside its contract: output 'probabilities' fails the ")
    assert detail in body["error"]
    assert "X-Inference-Degraded" not in headers
    put_fault(stack, None, None)
    status, _, body = call(stack, "POST", "/v2/models/iris/infer", BODY)
    assert status == 200, body  # the model itself keeps its contract


def test_a_static_fallback_answers_a_breach_marked_degraded(stack: LocalStack) -> None:
    put_fault(stack, "iris", {"answer": json.loads(answer_body("[0.1, 1.7, 0.1]"))})
    status, headers, body = call(stack, "POST", "/v2/models/iris-static/infer", BODY)
    assert status == 200, body
    assert headers["X-Inference-Degraded"] == "output-contract; static-fallback"
    assert body["outputs"] == STATIC["outputs"]


def test_an_async_result_outside_the_contract_fails_its_job(stack: LocalStack) -> None:
    put_fault(stack, "iris-async", {"answer_body": answer_body("[0.5, 0.2, 0.1]")})
    status, _, accepted = call(stack, "POST", "/v2/models/iris/infer", BODY, {"Prefer": "respond-async"})
    assert status == 202, accepted
    deadline = time.monotonic() + 30
    while True:
        status, _, view = call(stack, "GET", f"/v2/jobs/{accepted['id']}")
        assert status == 200, view
        if view["status"] in ("succeeded", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert view["status"] == "failed", view
    assert view["error"] == (
        "model 'iris' answered outside its contract: output 'probabilities' fails the sum_to_one check: "
        "[0, :] sums to 0.8, not 1 within 0.001"
    )
    assert "result" not in view
    assert "result_url" not in view
