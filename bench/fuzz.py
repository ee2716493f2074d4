"""Fuzz the local API with schemathesis against its OpenAPI document (``docs/openapi.json``).

The local stack (``local.stack.start_local_stack``: SageMaker runtime, moto for the async path, the local API
on 127.0.0.1) starts in-process; every case is a real HTTP request. Cases are generated per operation from
the document, positive (valid by the document) and negative (invalid), with the demo model's name and a
real job id mixed in so the 200 and 202 answers are exercised, not only the 404s. Each response must pass:
no 5xx, a documented status, the documented content type, body schema and headers.

With ``--faults`` the endpoint fails a share of its calls (``FAULTS``: transient errors, model errors, a
dropped connection): the 502/503 answers that brings must still be documented and conforming
(``Retry-After`` on every 503), so only the no-5xx check is dropped.

Before the generated cases, the hostile corpus (``bench.hostile_corpus``: deep nesting, amplified echoes,
huge dimensions, duplicate keys, invalid encodings, each over real HTTP) runs against the same stack, the
endpoint healthy: no 5xx, every refusal ``{"error": ...}`` under 1 KB. ``--no-hostile`` skips it.

Seeded: the same ``--seed`` and ``--cases`` generate the same requests.

    python -m bench.fuzz --cases 10000       # make fuzz
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from bench.hostile_corpus import MAX_ERROR_BYTES, HostileReport, corpus, run_corpus
from functions.config.models import load_models_config

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy
    from schemathesis import APIOperation, Case

    Operation = APIOperation[Any, Any, Any, Any]
    FuzzCase = Case[Any]

ROOT: Final[Path] = Path(__file__).resolve().parent.parent
DOCUMENT: Final[Path] = ROOT / "docs" / "openapi.json"
# Share of the cases per operation (by path and method); an operation without inputs needs only a few.
WEIGHTS: Final[dict[str, int]] = {
    "POST /v2/models/{model}/infer": 64,
    "POST /v2/models/{model}/versions/{version}/infer": 6,
    "GET /v2/jobs/{job_id}": 10,
    "GET /v2/models/{model}": 6,
    "GET /v2/models/{model}/ready": 6,
    "GET /v2/models/{model}/versions/{version}": 2,
    "GET /v2/models/{model}/versions/{version}/ready": 2,
    "GET /v2": 1,
    "GET /v2/health/live": 1,
    "GET /v2/health/ready": 1,
}
# --faults: what the iris endpoint does wrong while the fuzz runs (a local runtime fault spec).
FAULTS: Final[dict[str, Any]] = {
    "errors": {"ServiceUnavailable": 0.2, "ThrottlingException": 0.1, "ModelError": 0.05, "DropConnection": 0.05},
    "model_status": 500,
    "seed": 5,
}


@dataclass
class FuzzReport:
    cases: int = 0
    seconds: float = 0.0
    statuses: Counter[str] = field(default_factory=Counter)
    # One entry per distinct failure (check title + message), with the first case's curl command.
    findings: dict[str, str] = field(default_factory=dict)
    finding_counts: Counter[str] = field(default_factory=Counter)

    def summary(self) -> str:
        rate = self.cases / self.seconds if self.seconds else 0.0
        lines = [
            f"{self.cases} cases in {self.seconds:.1f} s ({rate:.0f}/s), {len(self.findings)} distinct finding(s), "
            f"{sum(self.finding_counts.values())} failing case(s)",
            "status by operation: " + ", ".join(f"{key}={count}" for key, count in sorted(self.statuses.items())),
        ]
        for key, example in self.findings.items():
            lines.append(f"\nFINDING x{self.finding_counts[key]}: {key}\n{example}")
        return "\n".join(lines)


def case_counts(total: int) -> dict[str, int]:
    """Split ``total`` over the operations by weight; every operation gets at least one case."""
    weight_sum = sum(WEIGHTS.values())
    counts = {label: max(1, total * weight // weight_sum) for label, weight in WEIGHTS.items()}
    counts["POST /v2/models/{model}/infer"] += max(0, total - sum(counts.values()))
    return counts


def example_body(document: Path = DOCUMENT) -> dict[str, Any]:
    """The document's own example inference request."""
    operation = json.loads(document.read_text())["paths"]["/v2/models/{model}/infer"]["post"]
    body: dict[str, Any] = operation["requestBody"]["content"]["application/json"]["example"]
    return body


def hostile(base_url: str, model: str = "iris") -> HostileReport:
    """The hostile corpus against ``base_url``, with a real job's id among the ids it tries."""
    return run_corpus(base_url, corpus(job_id=submit_job(base_url, model, example_body())))


def submit_job(base_url: str, model: str, body: dict[str, Any]) -> str:
    """One real async job, so the job-status operation is fuzzed against a job that exists as well."""
    request = urllib.request.Request(
        f"{base_url}/v2/models/{model}/infer",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Prefer": "respond-async"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        job_id: str = json.loads(response.read())["id"]
    return job_id


def strategies(operation: Operation, *, model: str, job_id: str) -> SearchStrategy[FuzzCase]:
    """Positive and negative cases from the document, plus the same with a real model or job."""
    from hypothesis import strategies as st
    from schemathesis import GenerationMode

    options: list[SearchStrategy[FuzzCase]] = [
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    parameters = {parameter.name for parameter in operation.path_parameters}
    real: dict[str, str] | None = None
    if "model" in parameters:
        real = {"model": model}
        if "version" in parameters:
            found = load_models_config().model(model)
            real["version"] = found.version if found is not None else "1"
    elif "job_id" in parameters:
        real = {"job_id": job_id}
    if real is not None:
        options += [
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=real),
            operation.as_strategy(generation_mode=GenerationMode.NEGATIVE, path_parameters=real),
            operation.as_strategy(generation_mode=GenerationMode.POSITIVE, path_parameters=real),
        ]
    if operation.body:
        examples = operation.schema.get_strategies_from_examples(operation)
        options += examples
    return st.one_of(options)


def fuzz(
    base_url: str,
    *,
    cases: int,
    seed: int = 20240611,
    model: str = "iris",
    document: Path = DOCUMENT,
    progress: Callable[[str], None] | None = None,
    allow_5xx: bool = False,
) -> FuzzReport:
    """Run ``cases`` generated requests against ``base_url``; failures are collected, not raised.

    ``allow_5xx`` (when faults are injected) drops the no-5xx check; every other check still applies."""
    import requests
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.core.result import Err
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [
        *([] if allow_5xx else [not_a_server_error]),
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
        response_headers_conformance,
    ]
    schema = schemathesis.openapi.from_path(str(document))
    example = example_body(document)
    job_id = submit_job(base_url, model, example)
    report = FuzzReport()
    session = requests.Session()
    counts = case_counts(cases)

    def record(case: FuzzCase, label: str) -> None:
        response = case.call(base_url=base_url, session=session, timeout=60)
        report.cases += 1
        report.statuses[f"{label} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=checks)
        except FailureGroup as group:
            for failure in group.exceptions:
                key = f"{label}: {failure.title}: {failure.message.splitlines()[0] if failure.message else ''}"
                report.finding_counts[key] += 1
                report.findings.setdefault(
                    key,
                    f"{response.status_code} {response.text[:300]}\n"
                    + case.as_curl_command(headers=dict(response.request.headers)),
                )

    def make_test(operation: Operation, label: str, budget: int, seed: int) -> Callable[[], None]:
        @hypothesis_seed(seed)
        @settings(
            max_examples=budget,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is recorded, none raised
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategies(operation, model=model, job_id=job_id))
        def run(case: FuzzCase) -> None:
            record(case, label)

        return run

    started = time.perf_counter()
    infer_label = "POST /v2/models/{model}/infer"
    operations: dict[str, Operation] = {}
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            raise result.err()
        operation = result.ok()
        operations[f"{operation.method.upper()} {operation.path}"] = operation
    # The inferences last: they take whatever the small operations left (their input space runs out early).
    for label in sorted(operations, key=lambda name: name == infer_label):
        budget = max(counts[label], cases - report.cases) if label == infer_label else counts[label]
        make_test(operations[label], label, budget, seed)()
        if progress is not None:
            progress(f"{label}: {report.cases} cases so far, {len(report.findings)} finding(s)")
    rounds = 0
    while report.cases < cases and rounds < 10:  # hypothesis stopped early: more inferences, on another seed
        rounds += 1
        make_test(operations[infer_label], infer_label, cases - report.cases, seed + rounds)()
    # The document's own example, sync, whatever was generated: at least one answer from the model's endpoint
    # (a 200, or with faults injected the 502/503 they bring) is always checked against the document.
    example_case = operations[infer_label].Case(
        path_parameters={"model": model},
        body=example,
        media_type="application/json",
    )
    record(example_case, infer_label)
    report.seconds = time.perf_counter() - started
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000, help="generated requests in all (default 10000)")
    parser.add_argument("--seed", type=int, default=20240611)
    parser.add_argument(
        "--faults", action="store_true", help="inject endpoint faults (FAULTS); 5xx allowed, still conforming"
    )
    parser.add_argument(
        "--hostile", action=argparse.BooleanOptionalAction, default=True, help="run the hostile corpus first (default)"
    )
    args = parser.parse_args(argv)
    if args.cases < len(WEIGHTS):
        parser.error(f"--cases must be at least {len(WEIGHTS)} (one per operation)")
    # The router logs every refused request; a fuzz run refuses thousands.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    from local.sagemaker_runtime import FaultSpec
    from local.stack import AsyncOptions, start_local_stack

    stack = start_local_stack(api_port=0, async_options=AsyncOptions(sweep_interval_s=3600))
    try:
        attacks = hostile(stack.api.url) if args.hostile else None
        if attacks is not None:
            print(attacks.summary() + "\n")
        print(f"fuzzing {stack.api.url} from {DOCUMENT.relative_to(ROOT)}: {args.cases} cases, seed {args.seed}")
        if args.faults:
            stack.runtime.set_fault("iris", FaultSpec.from_json(FAULTS))
            print(f"with endpoint faults {json.dumps(FAULTS)}")
        report = fuzz(stack.api.url, cases=args.cases, seed=args.seed, progress=print, allow_5xx=args.faults)
    finally:
        stack.stop()
    print(report.summary())
    findings = len(report.findings) + (len(attacks.findings) if attacks is not None else 0)
    cases = report.cases + (attacks.cases if attacks is not None else 0)
    promise = "every response conforming" if args.faults else "zero 5xx and every response conforming"
    if attacks is not None:
        promise += f", every hostile answer bounded (a refusal under {MAX_ERROR_BYTES} bytes)"
    print(f"\nPASS: {cases} cases, 0 findings, {promise}" if not findings else f"\nFAIL: {findings} finding(s)")
    return 0 if not findings else 1


if __name__ == "__main__":
    sys.exit(main())
