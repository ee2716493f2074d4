"""Guarded endpoint updates: each stage's endpoints carry SageMaker's blue/green DeploymentConfig with rollback
alarms on the variant the endpoint config names, and the stage file refuses what SageMaker would not do."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from functions.config.models import load_models_config
from infra.config.loader import DEFAULT_STAGES_PATH, parse_stage_config
from infra.config.types import StageConfigError
from infra.constructs.model_endpoint import VARIANT_NAME
from tests.helpers.synth import Synthesized

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())
CANARY: dict[str, Any] = {
    "traffic": "canary",
    "step_percent": 10,
    "wait_interval_s": 300,
    "termination_wait_s": 600,
    "max_execution_timeout_s": 3600,
    "rollback_5xx_per_minute": 0,
    "rollback_p99_latency_ms": 60000,
}


def parse_with(section: str, deployment: Any, stage: str = "prod") -> Any:
    document = copy.deepcopy(DOCUMENT)
    document["stages"][stage].setdefault(section, {})["deployment"] = deployment
    return parse_stage_config(document, stage, MODELS, "stages.json")


def endpoint(stage: Synthesized, name: str) -> dict[str, Any]:
    endpoints = stage.models["iris"].resources("AWS::SageMaker::Endpoint", {"EndpointName": name})
    assert len(endpoints) == 1, endpoints
    props: dict[str, Any] = next(iter(endpoints.values()))["Properties"]
    return props


def rollback_alarms(stage: Synthesized, props: dict[str, Any]) -> list[dict[str, Any]]:
    alarms = stage.models["iris"].resources("AWS::CloudWatch::Alarm")
    refs = [entry["AlarmName"]["Ref"] for entry in props["DeploymentConfig"]["AutoRollbackConfiguration"]["Alarms"]]
    return [alarms[ref]["Properties"] for ref in refs]


def test_prod_async_endpoint_updates_by_a_10_percent_canary_with_rollback_alarms(prod: Synthesized) -> None:
    props = endpoint(prod, "prod-iris-async")
    policy = props["DeploymentConfig"]["BlueGreenUpdatePolicy"]
    assert policy == {
        "TrafficRoutingConfiguration": {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            "WaitIntervalInSeconds": 300,
        },
        "TerminationWaitInSeconds": 600,
        "MaximumExecutionTimeoutInSeconds": 3600,
    }
    alarms = rollback_alarms(prod, props)
    assert [(alarm["MetricName"], alarm["ExtendedStatistic" if "ExtendedStatistic" in alarm else "Statistic"],
             alarm["Threshold"]) for alarm in alarms] == [
        ("Invocation5XXErrors", "Sum", 0),
        ("ModelLatency", "p99", 60_000_000),  # microseconds
    ]  # fmt: skip
    for alarm in alarms:
        assert alarm["Namespace"] == "AWS/SageMaker"
        assert sorted(alarm["Dimensions"], key=lambda d: d["Name"]) == [
            {"Name": "EndpointName", "Value": "prod-iris-async"},
            {"Name": "VariantName", "Value": VARIANT_NAME},
        ]


def test_the_rollback_alarms_watch_the_variant_the_endpoint_config_names(prod: Synthesized) -> None:
    configs = prod.models["iris"].resources("AWS::SageMaker::EndpointConfig")
    variants = {variant["VariantName"] for config in configs.values()
                for variant in config["Properties"]["ProductionVariants"]}  # fmt: skip
    for name in ("prod-iris", "prod-iris-async"):
        for alarm in rollback_alarms(prod, endpoint(prod, name)):
            watched = {d["Value"] for d in alarm["Dimensions"] if d["Name"] == "VariantName"}
            assert watched == variants == {VARIANT_NAME}


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_serverless_endpoints_update_all_at_once_with_a_baking_period(
    stage_name: str, dev: Synthesized, prod: Synthesized
) -> None:
    stage = dev if stage_name == "dev" else prod
    props = endpoint(stage, f"{stage_name}-iris")
    routing = props["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
    assert len(rollback_alarms(stage, props)) == 2


def test_dev_async_endpoint_updates_all_at_once(dev: Synthesized) -> None:
    routing = endpoint(dev, "dev-iris-async")["DeploymentConfig"]["BlueGreenUpdatePolicy"][
        "TrafficRoutingConfiguration"
    ]
    assert routing == {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 120}


def test_linear_traffic_reads_its_step() -> None:
    stage = parse_with("async_endpoint_defaults", {**CANARY, "traffic": "linear", "step_percent": 25,
                                                   "wait_interval_s": 60, "termination_wait_s": 0})  # fmt: skip
    deployment = stage.async_endpoints["iris-async"].deployment
    assert (deployment.traffic, deployment.step_percent, deployment.wait_interval_s) == ("linear", 25, 60)


def test_without_a_deployment_block_the_endpoint_keeps_sagemakers_default() -> None:
    document = copy.deepcopy(DOCUMENT)
    del document["stages"]["prod"]["async_endpoint_defaults"]["deployment"]
    del document["defaults"]["serverless_endpoint_defaults"]["deployment"]
    stage = parse_stage_config(document, "prod", MODELS, "stages.json")
    assert stage.async_endpoints["iris-async"].deployment is None
    assert stage.serverless_endpoints["iris"].deployment is None


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    ("async_endpoint_defaults", {**CANARY, "traffic": "rolling"}, "deployment.traffic", "is not one of"),
    ("async_endpoint_defaults", {**CANARY, "step_percent": 60}, "deployment.step_percent", "outside 1..50"),
    ("async_endpoint_defaults", {**CANARY, "traffic": "linear", "step_percent": 5}, "deployment.step_percent",
     "outside 10..50"),
    ("async_endpoint_defaults", {k: v for k, v in CANARY.items() if k != "step_percent"}, "deployment.step_percent",
     "is required"),
    ("async_endpoint_defaults", {**CANARY, "traffic": "all_at_once"}, "deployment.step_percent",
     "only canary and linear"),
    ("async_endpoint_defaults", {**CANARY, "wait_interval_s": 3601}, "deployment.wait_interval_s", "outside 0..3600"),
    ("async_endpoint_defaults", {**CANARY, "termination_wait_s": -1}, "deployment.termination_wait_s", "outside"),
    ("async_endpoint_defaults", {**CANARY, "max_execution_timeout_s": 599}, "deployment.max_execution_timeout_s",
     "outside 600..28800"),
    # canary: two baking periods of 300 s + 600 s termination = 1200 s of waiting
    ("async_endpoint_defaults", {**CANARY, "max_execution_timeout_s": 1200}, "deployment.max_execution_timeout_s",
     "larger than the deployment's total waiting time, 1200 s"),
    # linear at 10%: ten steps of 300 s
    ("async_endpoint_defaults", {**CANARY, "traffic": "linear", "termination_wait_s": 0,
                                 "max_execution_timeout_s": 3000}, "deployment.max_execution_timeout_s", "3000 s"),
    ("async_endpoint_defaults", {**CANARY, "rollback_p99_latency_ms": 0}, "deployment.rollback_p99_latency_ms",
     "outside"),
    ("async_endpoint_defaults", {**CANARY, "rollback_5xx_per_minute": -1}, "deployment.rollback_5xx_per_minute",
     "outside"),
    ("async_endpoint_defaults", {**CANARY, "bake_s": 1}, "deployment.bake_s", "unknown field"),
    ("async_endpoint_defaults", [], "deployment", "must be an object"),
    ("serverless_endpoint_defaults", CANARY, "deployment.traffic", "not available for a serverless endpoint"),
    ("serverless_endpoint_defaults", {**CANARY, "traffic": "linear"}, "deployment.traffic",
     "not available for a serverless endpoint"),
]  # fmt: skip


@pytest.mark.parametrize(("section", "deployment", "field", "message"), INVALID)
def test_invalid_deployment_names_the_field(section: str, deployment: Any, field: str, message: str) -> None:
    with pytest.raises(StageConfigError) as raised:
        parse_with(section, deployment)
    text = str(raised.value)
    assert f".{field}:" in text, text
    assert message in text, text


def test_an_inf1_endpoint_refuses_a_guarded_deployment_sagemaker_would_ignore() -> None:
    document = copy.deepcopy(DOCUMENT)
    document["stages"]["prod"]["async_endpoint_defaults"]["instance_type"] = "ml.inf1.xlarge"
    with pytest.raises(StageConfigError, match=r"async_endpoints\.iris-async\.deployment: SageMaker ignores"):
        parse_stage_config(document, "prod", MODELS, "stages.json")


@pytest.mark.parametrize("stage_name", ["dev", "prod"])
def test_the_rollback_alarms_notify_no_one_sagemaker_acts_on_them(
    stage_name: str, dev: Synthesized, prod: Synthesized
) -> None:
    """In ALARM whenever the variant is, baking or not: a topic would hear every stray 5XX of an ordinary day."""
    stage = dev if stage_name == "dev" else prod
    for name in (f"{stage_name}-iris", f"{stage_name}-iris-async"):
        alarms = rollback_alarms(stage, endpoint(stage, name))
        assert len(alarms) == 2
        for alarm in alarms:
            for actions in ("AlarmActions", "OKActions", "InsufficientDataActions"):
                assert alarm.get(actions, []) == [], (name, alarm)
