"""The router's live alias moves by CodeDeploy: both stages synthesize the application and the deployment group
on the alias with the stage's deployment config, the pre-traffic hook scoped to the new version, and alarms on
that version that roll the alias back; the alarm simulator evaluates those alarms: quiet on a healthy day, firing
in the incidents a bad version would cause."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from infra.config.loader import load_stage_config
from infra.config.types import RouterDeploymentConfig
from infra.constructs.router_deployment import (
    HOOK_TIMEOUT_S,
    deployment_config,
    error_ratio_threshold,
    latency_threshold_ms,
)
from ops.alarm_simulator.report import StageRun, run_stage
from ops.alarm_simulator.scenarios import SCENARIOS
from ops.alarm_simulator.template import StackTemplate
from tests.helpers.synth import Synthesized

STAGES = ("dev", "prod")
EXPECTED_CONFIG = {
    "dev": "CodeDeployDefault.LambdaAllAtOnce",
    "prod": "CodeDeployDefault.LambdaCanary10Percent5Minutes",
}
ROLLBACK_ALARMS = ("NewVersionErrors", "NewVersionServerErrors", "NewVersionLatency")
# The incident each rollback alarm exists for, as a new version would cause it.
ROLLBACK_INCIDENTS = {
    "RouterDeploymentNewVersionErrors": "router-timeouts",
    "RouterDeploymentNewVersionServerErrors": "outage-no-fallback",
    "RouterDeploymentNewVersionLatency": "slow-endpoint",
}
QUIET = [scenario.name for scenario in SCENARIOS if scenario.quiet]


def only(resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, sorted(resources)
    [(logical_id, resource)] = resources.items()
    return logical_id, resource


def alias(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    return only(synth.platform.resources("AWS::Lambda::Alias"))


def new_version_id(synth: Synthesized) -> str:
    """The logical id of the router version the alias moves to."""
    _, resource = alias(synth)
    logical_id, attribute = resource["Properties"]["FunctionVersion"]["Fn::GetAtt"]
    assert attribute == "Version"
    return str(logical_id)


def rollback_alarms(synth: Synthesized) -> dict[str, dict[str, Any]]:
    alarms = synth.platform.resources("AWS::CloudWatch::Alarm")
    found = {
        name: resource
        for name in ROLLBACK_ALARMS
        for logical_id, resource in alarms.items()
        if logical_id.startswith(f"RouterDeployment{name}")
    }
    assert set(found) == set(ROLLBACK_ALARMS)
    return found


def dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in metric["Dimensions"]}


@pytest.mark.parametrize("stage", STAGES)
def test_the_deployment_group_shifts_the_alias_with_the_stage_config_and_rolls_back_on_failure_and_alarm(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    synthesized = synth(stage)
    application_id, application = only(synthesized.platform.resources("AWS::CodeDeploy::Application"))
    assert application["Properties"]["ComputePlatform"] == "Lambda"
    group_id, group = only(synthesized.platform.resources("AWS::CodeDeploy::DeploymentGroup"))
    properties = group["Properties"]
    assert properties["ApplicationName"] == {"Ref": application_id}
    assert properties["DeploymentConfigName"] == EXPECTED_CONFIG[stage]
    assert properties["AutoRollbackConfiguration"] == {
        "Enabled": True,
        "Events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    alarm_ids = {
        logical_id
        for logical_id in synthesized.platform.resources("AWS::CloudWatch::Alarm")
        if logical_id.startswith("RouterDeploymentNewVersion")
    }
    assert properties["AlarmConfiguration"]["Enabled"] is True
    assert {alarm["Name"]["Ref"] for alarm in properties["AlarmConfiguration"]["Alarms"]} == alarm_ids
    assert len(alarm_ids) == len(ROLLBACK_ALARMS)

    _, live = alias(synthesized)
    hook_id, _ = only(
        {
            logical_id: resource
            for logical_id, resource in synthesized.platform.resources("AWS::Lambda::Function").items()
            if logical_id.startswith("RouterDeploymentPreTrafficHook")
        }
    )
    assert live["Properties"]["Name"] == "live"
    assert live["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"] == {
        "ApplicationName": {"Ref": application_id},
        "DeploymentGroupName": {"Ref": group_id},
        "BeforeAllowTrafficHook": {"Ref": hook_id},
    }
    # The hook and the alarms are updated to the new version before the alias update starts the deployment.
    assert {hook_id, *alarm_ids} <= set(live["DependsOn"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_hook_invokes_only_the_new_version_and_reports_to_its_deployment_group(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    synthesized = synth(stage)
    stage_config = load_stage_config(stage)
    version_id = new_version_id(synthesized)
    functions = synthesized.platform.resources("AWS::Lambda::Function")
    [(hook_id, hook)] = [(k, v) for k, v in functions.items() if k.startswith("RouterDeploymentPreTrafficHook")]
    [router_id] = [k for k in functions if k.startswith("RouterFunction")]
    hook_properties = hook["Properties"]
    role_id = hook_properties["Role"]["Fn::GetAtt"][0]
    assert hook_properties["Handler"] == "functions.handlers.deploy_hook.handler.lambda_handler"
    assert hook_properties["Timeout"] == HOOK_TIMEOUT_S > stage_config.router.timeout_s
    assert hook_properties["Environment"]["Variables"] | {"POWERTOOLS_LOG_LEVEL": None} == {
        "ROUTER_FUNCTION_NAME": {"Ref": router_id},
        "ROUTER_FUNCTION_VERSION": {"Fn::GetAtt": [version_id, "Version"]},
        "SMOKE_CALLER_ARN": {"Fn::GetAtt": [role_id, "Arn"]},
        "POWERTOOLS_LOG_LEVEL": None,
    }
    statements = [
        statement
        for policy in synthesized.platform.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]
    invokes = [statement for statement in statements if "lambda:InvokeFunction" in str(statement["Action"])]
    # A version's Ref is its qualified ARN (<function ARN>:<version>): this version, nothing else.
    assert invokes == [{"Action": "lambda:InvokeFunction", "Effect": "Allow", "Resource": {"Ref": version_id}}]
    [report] = [s for s in statements if s["Action"] == "codedeploy:PutLifecycleEventHookExecutionStatus"]
    group_id, _ = only(synthesized.platform.resources("AWS::CodeDeploy::DeploymentGroup"))
    assert {"Ref": group_id} in report["Resource"]["Fn::Join"][1]
    assert hook_id.startswith("RouterDeploymentPreTrafficHook")


@pytest.mark.parametrize("stage", STAGES)
def test_the_rollback_alarms_watch_the_new_version_and_notify_no_topic(
    synth: Callable[[str], Synthesized], stage: str
) -> None:
    synthesized = synth(stage)
    stage_config = load_stage_config(stage)
    version = {"Fn::GetAtt": [new_version_id(synthesized), "Version"]}
    [router_id] = [k for k in synthesized.platform.resources("AWS::Lambda::Function") if k.startswith("RouterFunction")]
    alarms = rollback_alarms(synthesized)
    for alarm in alarms.values():
        assert "AlarmActions" not in alarm["Properties"]
        assert "OKActions" not in alarm["Properties"]

    errors = alarms["NewVersionErrors"]["Properties"]
    assert (errors["Namespace"], errors["MetricName"]) == ("AWS/Lambda", "Errors")
    assert dimensions(errors) == {
        "FunctionName": {"Ref": router_id},
        "Resource": {"Fn::Join": ["", [{"Ref": router_id}, ":live"]]},
        "ExecutedVersion": version,
    }

    by_version = {"service": "inference-router", "router_version": version}
    ratio = alarms["NewVersionServerErrors"]["Properties"]
    stats = {query["Id"]: query["MetricStat"] for query in ratio["Metrics"] if "MetricStat" in query}
    assert {name: stat["Metric"]["MetricName"] for name, stat in stats.items()} == {
        "errors": "ServerErrors",
        "requests": "Requests",
    }
    assert all(dimensions(stat["Metric"]) == by_version for stat in stats.values())
    assert ratio["Threshold"] == pytest.approx(14.4 * (1 - 0.999))
    assert ratio["Threshold"] == error_ratio_threshold(stage_config.slo)

    latency = alarms["NewVersionLatency"]["Properties"]
    assert (latency["MetricName"], latency["ExtendedStatistic"]) == ("Latency", "p99")
    assert dimensions(latency) == by_version
    assert latency["Threshold"] == latency_threshold_ms(stage_config.slo) == 1000


def test_a_custom_canary_or_linear_gets_its_own_deployment_config_and_a_predefined_one_none() -> None:
    stack = Stack()
    canary = deployment_config(stack, RouterDeploymentConfig("canary", 20, 7))
    template = Template.from_stack(stack)
    template.has_resource_properties(
        "AWS::CodeDeploy::DeploymentConfig",
        {
            "ComputePlatform": "Lambda",
            "TrafficRoutingConfig": {
                "Type": "TimeBasedCanary",
                "TimeBasedCanary": {"CanaryInterval": 7, "CanaryPercentage": 20},
            },
        },
    )
    assert canary is not None
    linear_stack = Stack()
    deployment_config(linear_stack, RouterDeploymentConfig("linear", 25, 4))
    Template.from_stack(linear_stack).has_resource_properties(
        "AWS::CodeDeploy::DeploymentConfig",
        {
            "TrafficRoutingConfig": {
                "Type": "TimeBasedLinear",
                "TimeBasedLinear": {"LinearInterval": 4, "LinearPercentage": 25},
            }
        },
    )
    predefined_stack = Stack()
    deployment_config(predefined_stack, RouterDeploymentConfig("linear", 10, 3))
    Template.from_stack(predefined_stack).resource_count_is("AWS::CodeDeploy::DeploymentConfig", 0)


@pytest.fixture(scope="module")
def runs(synth: Callable[[str], Synthesized]) -> dict[str, StageRun]:
    # The rollback alarms live in the platform stack: the model stacks' alarms are test_alarm_simulation's.
    return {
        stage: run_stage(stage, [StackTemplate(synth(stage).platform.name, None, synth(stage).platform.json)])
        for stage in STAGES
    }


@pytest.mark.parametrize("stage", STAGES)
def test_the_simulator_keeps_the_rollback_alarms_quiet_when_nothing_is_wrong_and_fires_them_for_a_bad_version(
    runs: dict[str, StageRun], stage: str
) -> None:
    run = runs[stage]
    kinds = {entry.alarm.name: entry.kind for entry in run.alarms}
    assert {kinds[name] for name in ROLLBACK_INCIDENTS} == {"-"}
    for scenario in QUIET:
        assert [name for name in ROLLBACK_INCIDENTS if run.fired[scenario][name]] == [], scenario
    for name, incident in ROLLBACK_INCIDENTS.items():
        assert run.fired[incident][name], f"{name} stays quiet in {incident}"
