"""A short schemathesis run against the local API over real HTTP on 127.0.0.1 (the long one is `make fuzz`):
no 5xx, and every response conforming to docs/openapi.json (status, content type, body, headers). Then the
whole hostile corpus (bench.hostile_corpus), as `make fuzz` runs it: no 5xx, every refusal a small JSON error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.fuzz import FuzzReport, fuzz, hostile
from bench.hostile_corpus import ECHOED, POSITIONS, HostileReport, corpus
from local.sagemaker_runtime import FaultSpec
from local.stack import AsyncOptions, LocalStack, start_local_stack

pytestmark = pytest.mark.e2e

CASES = 300
FAULTED_CASES = 150


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    stack = start_local_stack(api_port=0, async_options=AsyncOptions(sweep_interval_s=3600))
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def report(stack: LocalStack) -> FuzzReport:
    return fuzz(stack.api.url, cases=CASES, seed=7)


def test_fuzz_short_run_finds_no_5xx_and_no_nonconforming_response(report: FuzzReport) -> None:
    assert report.cases >= CASES
    assert not report.findings, report.summary()


def test_fuzz_short_run_reaches_the_models_answers_not_only_refusals(report: FuzzReport) -> None:
    statuses = set(report.statuses)
    for expected in (
        "POST /v2/models/{model}/infer 200",
        "POST /v2/models/{model}/infer 202",
        "POST /v2/models/{model}/infer 400",
        "POST /v2/models/{model}/infer 404",
        "GET /v2/jobs/{job_id} 200",
        "GET /v2/jobs/{job_id} 404",
        "GET /v2/models/{model} 200",
    ):
        assert expected in statuses, report.summary()


@pytest.fixture(scope="module")
def hostile_report(stack: LocalStack) -> HostileReport:
    stack.runtime.clear_faults()  # the endpoint healthy, whichever fixture ran before
    return hostile(stack.api.url)


def test_hostile_corpus_gets_no_5xx_and_only_small_json_refusals(hostile_report: HostileReport) -> None:
    assert hostile_report.cases == len(corpus())
    assert not hostile_report.findings, hostile_report.summary()
    # Refused (400, 404, the router's own 413) and answered (200, 202): the corpus reaches both sides.
    assert {200, 202, 400, 404, 413} <= set(hostile_report.statuses), hostile_report.summary()
    assert 0 < hostile_report.largest_refusal[0] < 1024


def test_hostile_corpus_nests_in_every_position_and_amplifies_every_echoed_field() -> None:
    names = [case.name for case in corpus()]
    for position in POSITIONS:
        assert any(name.startswith("nesting") and name.endswith(f" in {position}") for name in names), position
    for field in ECHOED:
        assert any(name.startswith("huge") and name.endswith(f" {field}") for name in names), field
    for header in ("Prefer", "Idempotency-Key", "x-api-key", "Content-Type"):
        assert any(name.endswith(f" {header} header") for name in names), header


@pytest.fixture(scope="module")
def faulted_report(stack: LocalStack, report: FuzzReport) -> Iterator[FuzzReport]:
    # After the healthy run (``report``): the same API while the sync endpoint fails every call (few generated
    # cases reach it, so a share would leave the 503s to chance; `make fuzz ARGS=--faults` runs the mix).
    stack.runtime.set_fault("iris", FaultSpec(error="ServiceUnavailable", error_rate=1.0))
    try:
        yield fuzz(stack.api.url, cases=FAULTED_CASES, seed=11, allow_5xx=True)
    finally:
        stack.runtime.clear_faults()


def test_fuzz_with_endpoint_faults_every_answer_is_still_documented_and_conforming(
    faulted_report: FuzzReport,
) -> None:
    assert faulted_report.cases >= FAULTED_CASES
    assert not faulted_report.findings, faulted_report.summary()
    statuses = set(faulted_report.statuses)
    # The faults did reach callers (so their 502/503 answers, Retry-After included, were checked), and no 500.
    assert "POST /v2/models/{model}/infer 503" in statuses, faulted_report.summary()
    assert not any(status.endswith(" 500") for status in statuses)
