"""``make load`` in miniature: real HTTP clients on 127.0.0.1 against the local stack with 10% mixed faults
and the endpoint's concurrency throttle. Behaviour only (no 500, nothing lost, fallbacks answer), never speed:
the figures are the benchmark's to print."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.load import MODELS, main

pytestmark = pytest.mark.e2e


def test_load_with_faults_answers_every_request_without_a_500_and_degrades_where_configured(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    environment_before = dict(os.environ)
    reports = tmp_path / "load.json"
    exit_code = main(["--faults", "mixed", "--clients", "8", "--environments", "2", "--duration", "2",
                      "--json", str(reports)])  # fmt: skip
    capsys.readouterr()
    assert exit_code == 0
    assert dict(os.environ) == environment_before  # the bench silences Powertools for itself only
    (report,) = json.loads(reports.read_text())
    assert report["requests"] > 0
    assert report["unanswered"] == {}
    statuses = {int(status): count for status, count in report["statuses"].items()}
    assert statuses.get(500, 0) == 0
    assert set(statuses) <= {200, 502, 503, 504}  # 502: the injected ModelError with the model's own 500
    by_model = {model: {int(s): n for s, n in counts.items()} for model, counts in report["statuses_by_model"].items()}
    assert set(by_model) == set(MODELS)
    # The healthy warm-up answered every input in every environment, so both fallbacks cover every transient
    # fault and open circuit: never a 503/504 for them.
    for model in ("iris-static", "iris-last-good"):
        assert not {503, 504} & set(by_model[model]), (model, by_model[model])
    degraded_kinds = {why.rsplit(";", 1)[-1].strip() for why in report["degraded"]}
    assert degraded_kinds == {"static-fallback", "last-good"}
    assert by_model["iris"].get(503, 0) > 0  # without a fallback the same faults are refused
