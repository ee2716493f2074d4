"""Per-model SLOs, their multi-window burn-rate pages, the router's latency targets and the runbook URL."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import load_models_config, parse_models_config
from functions.config.telemetry import BREAKER_OPEN_STATE, LATENCY_TARGETS_VARIABLE, METRICS_NAMESPACE
from functions.config.telemetry import LATENCY_TARGET_DEFAULT_KEY as DEFAULT_TARGET_KEY
from functions.domain.breaker import BreakerState
from infra.config.loader import DEFAULT_STAGES_PATH, parse_stage_config
from infra.config.slo import LATENCY_TARGETS_MAX_ENV_BYTES, latency_targets_env
from infra.config.types import StageConfigError
from tests.helpers.synth import Synthesized

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())


def parse(document: dict[str, Any], models: Any = MODELS) -> Any:
    return parse_stage_config(document, "prod", models, "stages.json")


def with_slo(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["slo"] = changes
    return document


def fleet(count: int) -> Any:
    raw = json.loads(Path(MODELS.source).read_text())
    template = raw["models"][0]
    raw["models"] = [template] + [
        {**template, "name": f"model-{index:03d}", "route": {"sync": "lambda"}} for index in range(count)
    ]
    return parse_models_config(raw, "fleet.json")


def test_models_take_the_defaults_unless_they_override_them() -> None:
    stage = parse(with_slo(models={"iris": {"latency_target_ms": 250}}))
    iris = stage.slo.models["iris"]
    assert (iris.availability_target, iris.latency_target_ms, iris.latency_target) == (0.999, 250, 0.99)
    assert [(p.long_window_s, p.short_window_s, p.burn_rate) for p in stage.slo.burn_rate_pages] == [
        (3600, 300, 14.4),
        (21600, 1800, 6),
    ]
    assert json.loads(latency_targets_env(stage.slo)) == {DEFAULT_TARGET_KEY: 1000, "iris": 250}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"models": {"resnet": {"latency_target_ms": 5}}}, "slo.models.resnet: no model named 'resnet'"),
        ({"availability_target": 1}, "slo.availability_target: 1"),
        ({"models": {"iris": {"latency_target": 0}}}, "slo.models.iris.latency_target: 0"),
        ({"models": {"iris": {"p99_ms": 5}}}, "slo.models.iris"),
        ({"burn_rate_pages": []}, "slo.burn_rate_pages: must be a non-empty list"),
        (
            {"burn_rate_pages": [{"long_window_s": 300, "short_window_s": 300, "burn_rate": 2}]},
            "slo.burn_rate_pages[0].short_window_s: 300 must be shorter than long_window_s 300",
        ),
        (
            {"burn_rate_pages": [{"long_window_s": 3600, "short_window_s": 90, "burn_rate": 2}]},
            "slo.burn_rate_pages[0].short_window_s: 90 must be a multiple of 60",
        ),
        (
            {
                "latency_target": 0.9,
                "burn_rate_pages": [{"long_window_s": 3600, "short_window_s": 300, "burn_rate": 20}],
            },
            "that page could never fire",
        ),
        ({"rolling_days": 90}, "slo.rolling_days"),
        ({"min_requests": 0}, "slo.min_requests"),
    ],
)
def test_invalid_slo_settings_are_rejected_by_field(changes: dict[str, Any], message: str) -> None:
    document = copy.deepcopy(DOCUMENT)
    slo = document["defaults"]["slo"]
    for key, value in changes.items():
        slo[key] = value
    with pytest.raises(StageConfigError, match=re.escape(message)):
        parse(document)


def test_latency_targets_name_only_the_models_that_override_the_stage_default() -> None:
    two_hundred = fleet(200)
    document = copy.deepcopy(DOCUMENT)
    document["defaults"]["slo"]["models"] = {"model-007": {"latency_target_ms": 300}}
    stage = parse(document, two_hundred)
    assert json.loads(latency_targets_env(stage.slo)) == {DEFAULT_TARGET_KEY: 1000, "model-007": 300}
    # A model added with the default target leaves the router's environment, and the platform, unchanged.
    assert json.loads(latency_targets_env(parse(DOCUMENT, fleet(3)).slo)) == {DEFAULT_TARGET_KEY: 1000}


def test_too_many_latency_overrides_fail_at_synth_naming_the_budget() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["defaults"]["slo"]["models"] = {f"model-{i:03d}": {"latency_target_ms": 300 + i} for i in range(200)}
    with pytest.raises(StageConfigError, match=f"over its {LATENCY_TARGETS_MAX_ENV_BYTES} of Lambda's 4 KB"):
        parse(document, fleet(200))


@pytest.mark.parametrize("url", ["docs/runbooks", "http://wiki.example.com/runbooks", "https://"])
def test_runbook_base_url_must_be_an_https_url(url: str) -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["runbook_base_url"] = url
    with pytest.raises(StageConfigError, match=r"runbook_base_url: .* is not an https URL"):
        parse(document)


def test_runbook_base_url_loses_its_trailing_slash() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["runbook_base_url"] = "https://git.example.org/ml/router/-/blob/main/docs/runbooks/"
    assert parse(document).runbook_base_url == "https://git.example.org/ml/router/-/blob/main/docs/runbooks"


def test_the_circuit_page_reads_the_state_the_breaker_reports() -> None:
    assert BreakerState.OPEN.value == BREAKER_OPEN_STATE


def test_each_model_has_an_availability_and_a_latency_slo_on_the_router_metrics(prod: Synthesized) -> None:
    stack = prod.models["iris"]
    slos = {
        r["Properties"]["Name"]: r["Properties"]
        for r in stack.resources("AWS::ApplicationSignals::ServiceLevelObjective").values()
    }
    assert set(slos) == {"inference-router-prod-iris-availability", "inference-router-prod-iris-latency"}
    for name, bad in (("availability", "ServerErrors"), ("latency", "SlowRequests")):
        slo = slos[f"inference-router-prod-iris-{name}"]
        sli = slo["RequestBasedSli"]["RequestBasedSliMetric"]
        [total] = sli["TotalRequestCountMetric"]
        assert total["MetricStat"]["Metric"]["MetricName"] == "Requests"
        good = sli["MonitoredRequestCountMetric"]["GoodCountMetric"]
        assert [q.get("Expression") for q in good if q["ReturnData"]] == ["total - bad"]
        assert {q["Id"]: q["MetricStat"]["Metric"]["MetricName"] for q in good if "MetricStat" in q} == {
            "total": "Requests",
            "bad": bad,
        }
        for query in [total, *good]:
            if "MetricStat" in query:
                assert query["MetricStat"]["Metric"]["Namespace"] == METRICS_NAMESPACE
                assert query["MetricStat"]["Metric"]["Dimensions"] == [
                    {"Name": "service", "Value": "inference-router"},
                    {"Name": "model", "Value": "iris"},
                ]
        assert slo["Goal"]["AttainmentGoal"] == (99.9 if name == "availability" else 99.0)
        assert slo["Goal"]["Interval"] == {"RollingInterval": {"Duration": 28, "DurationUnit": "DAY"}}
        assert sorted(c["LookBackWindowMinutes"] for c in slo["BurnRateConfigurations"]) == [5, 30, 60, 360]
    # No SLO in the platform for a model with its own stack: only the in-Lambda digits has its SLOs there.
    assert {
        r["Properties"]["Name"]
        for r in prod.platform.resources("AWS::ApplicationSignals::ServiceLevelObjective").values()
    } == {"inference-router-prod-digits-availability", "inference-router-prod-digits-latency"}


def test_burn_rate_pages_need_both_windows_of_a_pair(prod: Synthesized) -> None:
    stack = prod.models["iris"]
    alarms = stack.resources("AWS::CloudWatch::Alarm")
    composites = stack.resources("AWS::CloudWatch::CompositeAlarm")
    assert len(composites) == 2
    for composite in composites.values():
        props = composite["Properties"]
        objective = "availability" if "availability" in props["AlarmDescription"] else "latency"
        assert "Runbook: https://" in json.dumps(props["AlarmDescription"])
        assert props["AlarmActions"]
        assert props["OKActions"]
        rule = json.dumps(props["AlarmRule"])
        children = {logical_id: alarms[logical_id]["Properties"] for logical_id in alarms if logical_id in rule}
        windows = {}
        for child in children.values():
            [expression] = [q for q in child["Metrics"] if "Expression" in q]
            period = next(q["MetricStat"]["Period"] for q in child["Metrics"] if "MetricStat" in q)
            windows[period] = (expression["Expression"], child["Threshold"], child["TreatMissingData"])
            assert not child.get("AlarmActions")
        budget = 1 - (0.999 if objective == "availability" else 0.99)
        assert windows == {
            3600: ("IF(total >= 30, bad / total, 0)", pytest.approx(14.4 * budget), "notBreaching"),
            300: ("bad / total", pytest.approx(14.4 * budget), "notBreaching"),
            21600: ("IF(total >= 30, bad / total, 0)", pytest.approx(6 * budget), "notBreaching"),
            1800: ("bad / total", pytest.approx(6 * budget), "notBreaching"),
        }
        # (long AND short) OR (long AND short): one pair alone never pages.
        assert re.fullmatch(
            r"\(\(ALARM\(.+\) AND ALARM\(.+\)\) OR \(ALARM\(.+\) AND ALARM\(.+\)\)\)", _rule_text(props["AlarmRule"])
        )


def _rule_text(rule: Any) -> str:
    if isinstance(rule, str):
        return rule
    parts = rule["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "X" for p in parts)


def test_in_lambda_models_have_their_slos_in_the_platform(tmp_path: Any) -> None:
    from tests.helpers.synth import synthesize

    raw = json.loads(Path(MODELS.source).read_text())
    raw["models"].append({**raw["models"][0], "name": "tiny", "route": {"sync": "lambda"}})
    models_path = tmp_path / "models.json"
    models_path.write_text(json.dumps(raw))
    synth = synthesize("dev", tmp_path / "out", models=load_models_config(models_path))
    names = {
        r["Properties"]["Name"]
        for r in synth.platform.resources("AWS::ApplicationSignals::ServiceLevelObjective").values()
    }
    assert names == {
        "inference-router-dev-tiny-availability",
        "inference-router-dev-tiny-latency",
        "inference-router-dev-digits-availability",  # the default config's own in-Lambda model
        "inference-router-dev-digits-latency",
    }
    env = next(
        iter(
            synth.platform.resources(
                "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
            ).values()
        )
    )
    assert json.loads(env["Properties"]["Environment"]["Variables"][LATENCY_TARGETS_VARIABLE]) == {
        DEFAULT_TARGET_KEY: 1000
    }
