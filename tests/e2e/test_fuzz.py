"""A short schemathesis run against the local API over real HTTP on 127.0.0.1 (the long one is `make fuzz`):
no 5xx, and every response conforming to docs/openapi.json (status, content type, body, headers)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.fuzz import FuzzReport, fuzz
from local.stack import AsyncOptions, LocalStack, start_local_stack

pytestmark = pytest.mark.e2e

CASES = 300


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
