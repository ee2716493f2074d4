"""Every alarm on-call receives: metric, statistic, threshold, comparison, missing data, action and runbook."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from functions.config.models import load_models_config
from functions.config.telemetry import METRICS_NAMESPACE, RESULTS_SERVICE, ROUTER_SERVICE
from infra.config.alarm_specs import ALARM_NAMES, ON_CALL_ALARM_NAMES
from infra.config.types import ALARM_TOPICS
from infra.constructs.on_call_alarm import runbook_slug
from tests.helpers.synth import Synthesized, SynthesizedStack, platform_ref_id, ref_id

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK_BASE_URL = json.loads((ROOT / "infra" / "stages.json").read_text())["defaults"]["runbook_base_url"]


class Expected(NamedTuple):
    namespace: str
    metric: str
    statistic: str
    comparison: str
    missing: str
    topic: str
    threshold: float
    dimensions: frozenset[str]


ALIAS_DIMENSIONS = frozenset({"FunctionName", "Resource"})
VARIANT_DIMENSIONS = frozenset({"EndpointName", "VariantName"})
ENDPOINT_DIMENSIONS = frozenset({"EndpointName"})
# The prod stage has router and serverless provisioned concurrency, so every alarm exists there.
EXPECTED: dict[str, Expected] = {
    "router_pc_low_utilization": Expected(
        "AWS/Lambda",
        "ProvisionedConcurrencyUtilization",
        "Maximum",
        "LessThanThreshold",
        "breaching",
        "ticket",
        0.3,
        ALIAS_DIMENSIONS,
    ),
    "serverless_pc_low_utilization": Expected(
        "AWS/SageMaker",
        "ServerlessProvisionedConcurrencyUtilization",
        "Maximum",
        "LessThanThreshold",
        "breaching",
        "ticket",
        0.3,
        VARIANT_DIMENSIONS,
    ),
    # Shares (metric math): the metric named is the numerator; every metric of the expression has the statistic.
    "router_pc_spillover": Expected(
        "AWS/Lambda",
        "ProvisionedConcurrencySpilloverInvocations",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "ticket",
        0.2,
        ALIAS_DIMENSIONS,
    ),
    # AWS documents Average, Maximum and Minimum only for the serverless PC metrics: never Sum.
    "serverless_pc_spillover": Expected(
        "AWS/SageMaker",
        "ServerlessProvisionedConcurrencySpilloverInvocations",
        "Average",
        "GreaterThanThreshold",
        "notBreaching",
        "ticket",
        0.2,
        VARIANT_DIMENSIONS,
    ),
    "router_errors": Expected(
        "AWS/Lambda", "Errors", "Sum", "GreaterThanThreshold", "notBreaching", "page", 0, ALIAS_DIMENSIONS
    ),
    "router_throttles": Expected(
        "AWS/Lambda", "Throttles", "Sum", "GreaterThanThreshold", "notBreaching", "page", 0, ALIAS_DIMENSIONS
    ),
    "serverless_5xx_errors": Expected(
        "AWS/SageMaker",
        "Invocation5XXErrors",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "ticket",
        0,
        VARIANT_DIMENSIONS,
    ),
    "dlq_not_empty": Expected(
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        "Maximum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0,
        frozenset({"QueueName"}),
    ),
    "async_backlog_without_capacity": Expected(
        "AWS/SageMaker",
        "HasBacklogWithoutCapacity",
        "Minimum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0,
        ENDPOINT_DIMENSIONS,
    ),
    "router_unhandled_errors": Expected(
        METRICS_NAMESPACE,
        "UnhandledErrors",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0,
        frozenset({"service"}),
    ),
    "async_forged_notifications": Expected(
        METRICS_NAMESPACE,
        "MismatchedNotifications",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0,
        frozenset({"service"}),
    ),
    "async_oldest_open_job_age": Expected(
        METRICS_NAMESPACE,
        "OldestOpenJobAgeSeconds",
        "Maximum",
        "GreaterThanThreshold",
        "breaching",
        "page",
        7200,
        frozenset({"service"}),
    ),
    "async_oldest_request_age": Expected(
        "AWS/SageMaker",
        "ApproximateAgeOfOldestRequest",
        "Maximum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        1800,
        ENDPOINT_DIMENSIONS,
    ),
    # prod's router timeout is 25 s: the ticket fires at 80% of it.
    "router_duration_near_timeout": Expected(
        "AWS/Lambda", "Duration", "p99", "GreaterThanThreshold", "notBreaching", "ticket", 20_000, ALIAS_DIMENSIONS
    ),
    "circuit_open": Expected(
        METRICS_NAMESPACE,
        "BreakerTransitions",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0,
        frozenset({"service", "endpoint", "state"}),
    ),
    "degraded_answers_sustained": Expected(
        METRICS_NAMESPACE,
        "DegradedRequests",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "page",
        0.05,
        frozenset({"service", "model"}),
    ),
    # The stage's total from the service-only rollups: the metric named is the router's and sweeper's cost.
    "cost_per_1000_predictions": Expected(
        METRICS_NAMESPACE,
        "CostUsd",
        "Sum",
        "GreaterThanThreshold",
        "notBreaching",
        "ticket",
        0.1,
        frozenset({"service"}),
    ),
    # The drift job's largest feature PSI of a run, one alarm per capturing model (in the platform stack).
    "feature_drift": Expected(
        METRICS_NAMESPACE,
        "MaxFeaturePsi",
        "Maximum",
        "GreaterThanThreshold",
        "notBreaching",
        "ticket",
        0.2,
        frozenset({"service", "model"}),
    ),
}


def metric_stats(alarm: dict[str, Any]) -> list[tuple[str, str, str, frozenset[str]]]:
    """(namespace, metric, statistic, dimension names) of each metric an alarm reads, plain or in metric math."""
    if "Metrics" not in alarm:
        statistic = alarm.get("Statistic") or alarm["ExtendedStatistic"]
        dimensions = frozenset(d["Name"] for d in alarm["Dimensions"])
        return [(alarm["Namespace"], alarm["MetricName"], statistic, dimensions)]
    return [
        (
            query["MetricStat"]["Metric"]["Namespace"],
            query["MetricStat"]["Metric"]["MetricName"],
            query["MetricStat"]["Stat"],
            frozenset(d["Name"] for d in query["MetricStat"]["Metric"]["Dimensions"]),
        )
        for query in alarm["Metrics"]
        if "MetricStat" in query
    ]


def test_the_expectations_cover_every_alarm() -> None:
    assert set(EXPECTED) == set(ALARM_NAMES)


def expected_count(alarm_name: str) -> int:
    """One alarm per stage, or one per model (in its stack, or in the platform for an in-Lambda model)."""
    per_model = alarm_name in EXPECTED and "model" in EXPECTED[alarm_name].dimensions
    models = load_models_config().models
    if alarm_name == "feature_drift":
        return sum(1 for model in models if model.capture is not None)
    return len(models) if per_model else 1


def alarms_for(synth: Synthesized, alarm_name: str) -> list[dict[str, Any]]:
    return [alarm for _, alarm in alarms_in_stacks(synth, alarm_name)]


def alarms_in_stacks(synth: Synthesized, alarm_name: str) -> list[tuple[SynthesizedStack, dict[str, Any]]]:
    marker = f"Runbook: {RUNBOOK_BASE_URL}/{runbook_slug(alarm_name)}.md"
    return [
        (stack, resource["Properties"])
        for stack in synth.all
        for resource in stack.resources("AWS::CloudWatch::Alarm").values()
        if marker in json.dumps(resource["Properties"].get("AlarmDescription", ""))
    ]


def action_topic_id(synth: Synthesized, stack: SynthesizedStack, action: Any) -> str:
    """The platform topic an alarm action names: directly in the platform, through SSM in a model stack."""
    return ref_id(action) if stack is synth.platform else platform_ref_id(synth, stack, action)


def topic_ids(synth: Synthesized) -> dict[str, str]:
    return {
        resource["Properties"]["DisplayName"].removeprefix("Inference router "): logical_id
        for logical_id, resource in synth.resources("AWS::SNS::Topic").items()
        if resource["Properties"].get("DisplayName", "").startswith("Inference router ")
    }


@pytest.mark.parametrize("alarm_name", ALARM_NAMES)
def test_alarm_reads_the_right_metric_and_tells_the_right_topic(prod: Synthesized, alarm_name: str) -> None:
    expected = EXPECTED[alarm_name]
    alarms = alarms_in_stacks(prod, alarm_name)
    assert len(alarms) == expected_count(alarm_name), f"{alarm_name}: {len(alarms)} alarms"
    for stack, alarm in alarms:
        stats = metric_stats(alarm)
        assert expected.metric in [metric for _, metric, _, _ in stats]
        assert {(namespace, statistic, dimensions) for namespace, _, statistic, dimensions in stats} == {
            (expected.namespace, expected.statistic, expected.dimensions)
        }
        assert alarm["ComparisonOperator"] == expected.comparison
        assert alarm["TreatMissingData"] == expected.missing
        assert alarm["Threshold"] == expected.threshold
        topic = topic_ids(prod)[expected.topic]
        assert [action_topic_id(prod, stack, action) for action in alarm["AlarmActions"]] == [topic]
        assert [action_topic_id(prod, stack, action) for action in alarm["OKActions"]] == [topic]


def test_low_utilization_tickets_look_at_a_long_window(prod: Synthesized) -> None:
    for alarm_name in ("router_pc_low_utilization", "serverless_pc_low_utilization"):
        alarm = alarms_for(prod, alarm_name)[0]
        assert alarm["Period"] * alarm["EvaluationPeriods"] >= 24 * 3600
        # Every period must be under 30% for the ticket: a busy hour means the capacity is earning its cost.
        assert alarm["DatapointsToAlarm"] == alarm["EvaluationPeriods"]


def test_router_alarms_watch_the_live_alias(prod: Synthesized) -> None:
    alias = next(iter(prod.resources("AWS::Lambda::Alias")))
    for alarm_name in ("router_errors", "router_pc_low_utilization"):
        dimensions = {d["Name"]: d["Value"] for d in alarms_for(prod, alarm_name)[0]["Dimensions"]}
        assert alias in str(dimensions["Resource"]) or ":live" in str(dimensions["Resource"])


def test_pc_alarms_exist_only_where_provisioned_concurrency_does(dev: Synthesized) -> None:
    for alarm_name in ALARM_NAMES:
        count = len(alarms_for(dev, alarm_name))
        expected = 0 if "_pc_" in alarm_name else expected_count(alarm_name)
        assert count == expected, f"{alarm_name}: {count} in dev"


def test_every_alarm_has_an_action_and_a_description(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        alarms = synth.resources("AWS::CloudWatch::Alarm")
        assert alarms, f"no alarms in the {synth.stage} template"
        # A burn-rate window alarm notifies through its composite page only (a window alone is no incident).
        rules = json.dumps(
            [c["Properties"]["AlarmRule"] for c in synth.resources("AWS::CloudWatch::CompositeAlarm").values()]
        )
        # A rollback alarm acts through what watches it: a router version's through its deployment group
        # (CodeDeploy rolls the alias back), an endpoint variant's through the endpoint's AutoRollbackConfiguration
        # (SageMaker shifts traffic back to the old fleet).
        rollbacks = json.dumps(
            [
                g["Properties"]["AlarmConfiguration"]
                for g in synth.resources("AWS::CodeDeploy::DeploymentGroup").values()
            ]
            + [
                e["Properties"]["DeploymentConfig"]["AutoRollbackConfiguration"]
                for e in synth.resources("AWS::SageMaker::Endpoint").values()
                if "AutoRollbackConfiguration" in e["Properties"].get("DeploymentConfig", {})
            ]
        )
        for logical_id, resource in alarms.items():
            props = resource["Properties"]
            assert props.get("AlarmActions") or logical_id in rules or f'"{logical_id}"' in rollbacks, props
            assert len(json.dumps(props.get("AlarmDescription", ""))) > 60, props


def test_alarm_topics_use_a_key_cloudwatch_may_use(prod: Synthesized) -> None:
    topics = prod.json["Resources"]
    keys = set()
    topics_by_name = topic_ids(prod)
    assert set(topics_by_name) == set(ALARM_TOPICS)
    for logical_id in topics_by_name.values():
        keys.add(ref_id(topics[logical_id]["Properties"]["KmsMasterKeyId"]))
    assert len(keys) == 1
    policy = topics[keys.pop()]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in policy if s.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"]
    assert cloudwatch
    assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])
    assert_only_this_stacks_alarms(cloudwatch[0])


def assert_only_this_stacks_alarms(statement: dict[str, Any]) -> None:
    conditions = statement["Condition"]
    assert conditions["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    source_arn = json.dumps(conditions["ArnLike"]["aws:SourceArn"])
    assert ":cloudwatch:" in source_arn
    assert ":alarm:InferenceRouter-prod-*" in source_arn


def test_cloudwatch_may_publish_to_each_alarm_topic(prod: Synthesized) -> None:
    # The topics' own policy (from enforce_ssl) replaces SNS's default one, so CloudWatch needs an Allow.
    topics_by_name = topic_ids(prod)
    assert set(topics_by_name) == set(ALARM_TOPICS)
    for topic_name, logical_id in topics_by_name.items():
        policies = [
            resource["Properties"]["PolicyDocument"]["Statement"]
            for resource in prod.resources("AWS::SNS::TopicPolicy").values()
            if logical_id in [ref_id(topic) for topic in resource["Properties"]["Topics"]]
        ]
        assert len(policies) == 1, f"{topic_name}: {len(policies)} topic policies"
        allows = [
            statement
            for statement in policies[0]
            if statement["Effect"] == "Allow"
            and statement.get("Principal", {}).get("Service") == "cloudwatch.amazonaws.com"
        ]
        assert len(allows) == 1, f"{topic_name}: CloudWatch may not publish"
        assert allows[0]["Action"] == "sns:Publish"
        assert ref_id(allows[0]["Resource"]) == logical_id
        assert_only_this_stacks_alarms(allows[0])


@pytest.mark.parametrize("alarm_name", ON_CALL_ALARM_NAMES)
def test_every_alarm_has_a_runbook_with_the_four_sections(alarm_name: str) -> None:
    runbook = ROOT / "docs" / "runbooks" / f"{runbook_slug(alarm_name)}.md"
    text = runbook.read_text(encoding="utf-8")
    headings = [line.lstrip("# ").strip().lower() for line in text.splitlines() if re.match(r"^#{2,3} ", line)]
    for section in ("what it means", "how to confirm", "what to do", "how to roll back"):
        assert section in headings, f"{runbook.name} lacks a '{section}' section"


@pytest.mark.parametrize(
    ("alarm_name", "service"),
    [("router_unhandled_errors", ROUTER_SERVICE), ("async_forged_notifications", RESULTS_SERVICE)],
)
def test_custom_metric_alarms_read_the_emitting_functions_service(
    prod: Synthesized, alarm_name: str, service: str
) -> None:
    # Powertools EMF puts the function's POWERTOOLS_SERVICE_NAME in the "service" dimension.
    [alarm] = alarms_for(prod, alarm_name)
    assert alarm["Dimensions"] == [{"Name": "service", "Value": service}]


def test_the_cost_ticket_is_the_stages_cost_per_1000_predictions_over_6_hours(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synth in (dev, prod):
        [alarm] = alarms_for(synth, "cost_per_1000_predictions")
        [expression] = [query for query in alarm["Metrics"] if "Expression" in query]
        assert expression["Expression"] == "1000 * (FILL(router, 0) + FILL(sweeper, 0)) / requests"
        assert expression["ReturnData"] is True
        reads = {
            query["Id"]: (
                query["MetricStat"]["Metric"]["MetricName"],
                query["MetricStat"]["Metric"]["Dimensions"],
                query["MetricStat"]["Period"],
            )
            for query in alarm["Metrics"]
            if "MetricStat" in query
        }
        assert reads == {
            "router": ("CostUsd", [{"Name": "service", "Value": ROUTER_SERVICE}], 3600),
            "sweeper": ("CostUsd", [{"Name": "service", "Value": "inference-sweeper"}], 3600),
            "requests": ("Requests", [{"Name": "service", "Value": ROUTER_SERVICE}], 3600),
        }
        assert (alarm["Threshold"], alarm["EvaluationPeriods"], alarm["DatapointsToAlarm"]) == (0.1, 6, 6)
        assert "0.1 USD per 1,000 predictions" in json.dumps(alarm["AlarmDescription"])
