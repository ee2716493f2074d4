"""The alarm simulator's inputs: alarms read from templates (names, topics, dimensions) and the simulated
metrics (what a scenario minute emits, and a loud failure for a metric or dimensions nobody publishes)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from functions.config.prices import ServerlessSize, region_prices
from functions.domain.cost import RequestCosting
from ops.alarm_simulator.emitters import SimulatedMetrics, UnknownMetricError
from ops.alarm_simulator.engine import CompositeAlarm, MetricAlarm, SimulationError
from ops.alarm_simulator.scenarios import SCENARIOS, hours, spread
from ops.alarm_simulator.series import Samples, statistic
from ops.alarm_simulator.template import DEAD_LETTER_QUEUE, StackTemplate, router_latency_targets, stage_alarms
from ops.alarm_simulator.traffic import Capacity, Minute, answers

CAPACITY = Capacity(
    router_provisioned=2,
    router_reserved=20,
    serverless_provisioned={"s-iris": 2},
    async_endpoints=("s-iris-async",),
    models=("iris",),
    latency_targets_ms={"iris": 100.0},
)


def alarm_resource(description: str, actions: list[Any], **extra: Any) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "AlarmActions": actions,
            "ComparisonOperator": "GreaterThanThreshold",
            "EvaluationPeriods": 1,
            "Threshold": 0,
            **extra,
        },
    }


def stage() -> list[StackTemplate]:
    platform = {
        "Resources": {
            "PageTopic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "Inference router page"}},
            "TopicParam": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/s/page-topic", "Value": {"Ref": "PageTopic"}},
            },
            "Router": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Environment": {
                        "Variables": {"POWERTOOLS_SERVICE_NAME": "inference-router", "LATENCY_TARGETS_MS": '{"*": 250}'}
                    }
                },
            },
            "Dlq": {"Type": "AWS::SQS::Queue", "Properties": {}},
            "Results": {
                "Type": "AWS::SQS::Queue",
                "Properties": {"RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["Dlq", "Arn"]}}},
            },
            "DlqAlarm1A2B3C4D": alarm_resource(
                "Page: dead letters. Runbook: https://example.com/runbooks/dlq-not-empty.md",
                [{"Ref": "PageTopic"}],
                Namespace="AWS/SQS",
                MetricName="ApproximateNumberOfMessagesVisible",
                Dimensions=[{"Name": "QueueName", "Value": {"Fn::GetAtt": ["Dlq", "QueueName"]}}],
                Period=60,
                Statistic="Maximum",
                TreatMissingData="notBreaching",
            ),
            "ErrorsAlarm": alarm_resource(
                "Page. Runbook: https://example.com/runbooks/router-errors.md#now",
                [{"Ref": "PageTopic"}],
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Dimensions=[
                    {"Name": "FunctionName", "Value": {"Ref": "Router"}},
                    {"Name": "Resource", "Value": {"Fn::Join": ["", [{"Ref": "Router"}, ":live"]]}},
                ],
                Period=60,
                Statistic="Sum",
            ),
        }
    }
    model = {
        "Parameters": {"PageArn": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/s/page-topic"}},
        "Resources": {
            "WakeFromZeroAlarm89ABCDEF": alarm_resource(
                "scaling",
                [{"Ref": "ScalingPolicy"}],
                Namespace="AWS/SageMaker",
                MetricName="HasBacklogWithoutCapacity",
                Dimensions=[{"Name": "EndpointName", "Value": "s-iris-async"}],
                Period=60,
                Statistic="Maximum",
            ),
            "ScalingPolicy": {"Type": "AWS::ApplicationAutoScaling::ScalingPolicy", "Properties": {}},
            "Burn": {
                "Type": "AWS::CloudWatch::CompositeAlarm",
                "Properties": {
                    "AlarmDescription": "Page. Runbook: https://example.com/runbooks/slo-availability-burn.md",
                    "AlarmActions": [{"Ref": "PageArn"}],
                    "AlarmRule": {
                        "Fn::Join": ["", ['ALARM("', {"Fn::GetAtt": ["WakeFromZeroAlarm89ABCDEF", "Arn"]}, '")']]
                    },
                },
            },
        },
    }
    return [StackTemplate("S", None, platform), StackTemplate("S-model-iris", "iris", model)]


def test_alarms_are_named_by_runbook_classed_by_topic_and_keyed_as_the_metrics_are() -> None:
    alarms = {entry.alarm.name: entry for entry in stage_alarms(stage())}
    assert {name: entry.kind for name, entry in alarms.items()} == {
        "dlq-not-empty": "page",
        "router-errors": "page",
        "WakeFromZeroAlarm [iris]": "-",
        "slo-availability-burn [iris]": "page",  # its topic reached through the model stack's SSM parameter
    }
    dlq = alarms["dlq-not-empty"].alarm
    errors = alarms["router-errors"].alarm
    assert isinstance(dlq, MetricAlarm)
    assert isinstance(errors, MetricAlarm)
    assert dlq.queries[0].stat is not None
    assert dlq.queries[0].stat.dimensions == (("QueueName", DEAD_LETTER_QUEUE),)
    assert errors.queries[0].stat is not None
    assert errors.queries[0].stat.dimensions == (
        ("FunctionName", "inference-router"),
        ("Resource", "inference-router:live"),
    )
    assert errors.treat_missing == "missing"  # CloudWatch's default when the template says nothing
    burn = alarms["slo-availability-burn [iris]"].alarm
    assert isinstance(burn, CompositeAlarm)
    assert burn.rule == 'ALARM("WakeFromZeroAlarm [iris]")'


def test_an_anomaly_band_alarm_or_an_unfollowable_reference_fails_loudly() -> None:
    templates = stage()
    del templates[0].json["Resources"]["DlqAlarm1A2B3C4D"]["Properties"]["Threshold"]  # type: ignore[attr-defined]
    with pytest.raises(SimulationError, match="anomaly"):
        stage_alarms(templates)
    templates = stage()
    templates[1].json["Parameters"]["PageArn"]["Default"] = "/elsewhere"  # type: ignore[index]
    with pytest.raises(SimulationError, match="PageArn"):
        stage_alarms(templates)


def test_the_router_latency_targets_come_from_its_environment_with_the_default_entry() -> None:
    assert router_latency_targets(stage(), ("iris", "mlp")) == {"iris": 250.0, "mlp": 250.0}
    with pytest.raises(SimulationError, match="no router function"):
        router_latency_targets(stage()[1:], ("iris",))


def test_spread_keeps_the_total_and_spaces_the_counts() -> None:
    counts = spread([0.25] * 8 + [2.5] * 2)
    assert counts == [0, 0, 0, 1, 0, 0, 0, 1, 2, 3]
    assert sum(counts) == 7


def test_a_minute_emits_what_its_answers_were() -> None:
    minute = Minute(requests=100, client_errors=2, endpoint_errors=3, async_submissions=10, endpoint_ms=100.0)
    metrics = SimulatedMetrics([minute], CAPACITY)
    per_model = {"service": "inference-router", "model": "iris"}
    assert statistic(metrics.samples("InferenceRouter", "Requests", per_model), "Sum") == 110
    assert statistic(metrics.samples("InferenceRouter", "ServerErrors", per_model), "Sum") == 3
    assert statistic(metrics.samples("InferenceRouter", "ServerErrors", {**per_model, "route": "async"}), "Sum") == 0
    # A 106 ms median (100 ms endpoint + 6 ms router): only the fastest half, at 0.8x, is under the 100 ms target.
    assert statistic(metrics.samples("InferenceRouter", "SlowRequests", per_model), "Sum") == pytest.approx(50)
    api = {"ApiName": "x", "Stage": "s"}
    assert statistic(metrics.samples("AWS/ApiGateway", "5XXError", api), "Average") == pytest.approx(0.03)
    variant = {"EndpointName": "s-iris", "VariantName": "AllTraffic"}
    assert statistic(metrics.samples("AWS/SageMaker", "Invocation5XXErrors", variant), "Sum") == 3


def test_an_outage_answers_from_the_fallback_or_with_503s() -> None:
    down = Minute(requests=50, endpoint_up=False, fallback=True, breaker_opens=5)
    per_model = {"service": "inference-router", "model": "iris"}
    with_fallback = SimulatedMetrics([down], CAPACITY)
    assert statistic(with_fallback.samples("InferenceRouter", "DegradedRequests", per_model), "Sum") == 50
    assert statistic(with_fallback.samples("InferenceRouter", "ServerErrors", per_model), "Sum") == 0
    breaker = {"service": "inference-router", "endpoint": "s-iris", "state": "open"}
    assert statistic(with_fallback.samples("InferenceRouter", "BreakerTransitions", breaker), "Sum") == 5
    without = SimulatedMetrics([Minute(requests=50, endpoint_up=False)], CAPACITY)
    assert statistic(without.samples("InferenceRouter", "ServerErrors", per_model), "Sum") == 50


def test_a_metric_or_dimensions_nobody_publishes_fail_loudly() -> None:
    metrics = SimulatedMetrics([Minute(requests=1)], CAPACITY)
    with pytest.raises(UnknownMetricError, match="CPUUtilization is not simulated"):
        metrics.samples("AWS/SageMaker", "CPUUtilization", {"EndpointName": "s-iris"})
    with pytest.raises(UnknownMetricError, match="not published with dimensions"):
        metrics.samples("InferenceRouter", "DegradedAnswers", {"service": "inference-router", "model": "iris"})
    with pytest.raises(UnknownMetricError, match="nothing publishes model='mlp'"):
        metrics.samples("InferenceRouter", "Requests", {"service": "inference-router", "model": "mlp"})
    with pytest.raises(UnknownMetricError, match="not an async endpoint"):
        metrics.samples("AWS/SageMaker", "HasBacklogWithoutCapacity", {"EndpointName": "s-iris"})


def test_every_scenario_is_a_day_and_its_incident_is_inside_it() -> None:
    for scenario in SCENARIOS:
        assert len(scenario.build()) == 24 * 60, scenario.name
    assert hours(14, 15) == range(840, 900)


def test_a_call_past_the_deadline_is_a_504_at_the_deadline_not_an_endpoint_error() -> None:
    hung = answers(Minute(requests=100, client_errors=0, endpoint_ms=30_000.0), 19_700.0)
    assert hung.server_errors == 100
    assert hung.endpoint_failures == 0
    assert max(ms for ms, _ in hung.latencies) == 19_700.0
    # 2.5 s: even the 3x tail (7.5 s) is inside the deadline, so nothing times out.
    slow = answers(Minute(requests=100, endpoint_ms=2_500.0), 19_700.0)
    assert slow.server_errors == 0


def test_cost_is_emitted_as_the_router_and_the_sweeper_price_it() -> None:
    """By hand from the price table: the router's requests (functions/domain/cost.py arithmetic) by model and by
    service alone, and the sweeper's 5-minute charge for the async instances up when it runs."""
    prices = region_prices("us-east-1")
    costing = RequestCosting(prices, 1024, False, {"s-iris": ServerlessSize(2048, 0)}.get)
    capacity = replace(
        CAPACITY,
        models=("iris", "digits"),
        costing=costing,
        serverless_endpoints={"iris": "s-iris"},
        async_instance_types={"iris": "ml.m5.large"},
    )
    minute = Minute(requests=10, endpoint_ms=40.0, async_submissions=2, async_instances=3, open_job_age_s=0.0)
    metrics = SimulatedMetrics([minute, replace(minute, open_job_age_s=None)], capacity)
    router, sweeper = {"service": "inference-router"}, {"service": "inference-sweeper"}
    # iris: 10 answers of 46 ms (router) with a 40 ms call of 300 bytes at 2 GB, 2 submissions of 6 ms.
    each = 3.5e-6 + 0.2e-6 + 0.046 * 0.0000133334 + 0.040 * 2 * 0.00002 + 300 / 1024**3 * 0.016
    submitted = 3.5e-6 + 0.2e-6 + 0.006 * 0.0000133334
    [iris, _] = metrics.samples("InferenceRouter", "CostUsd", {**router, "model": "iris"})
    assert statistic([iris], "Sum") == pytest.approx(10 * each + 2 * submitted, rel=1e-9)
    # digits has no serverless endpoint: the API and the router only.
    [digits, _] = metrics.samples("InferenceRouter", "CostUsd", {**router, "model": "digits"})
    digits_each = 3.5e-6 + 0.2e-6 + 0.046 * 0.0000133334
    assert statistic([digits], "Sum") == pytest.approx(10 * digits_each + 2 * submitted, rel=1e-9)
    [total, _] = metrics.samples("InferenceRouter", "CostUsd", router)
    assert statistic([total], "Sum") == pytest.approx(statistic([iris], "Sum") + statistic([digits], "Sum"))
    [requests, _] = metrics.samples("InferenceRouter", "Requests", router)
    assert statistic([requests], "Sum") == 2 * (10 + 2)
    # 3 instances x 300 s x 0.115 USD/h, only in the minute the sweeper ran; digits has no async endpoint.
    assert [statistic([s], "Sum") for s in metrics.samples("InferenceRouter", "CostUsd", sweeper)] == [
        pytest.approx(3 * 300 * 0.115 / 3600),
        None,
    ]
    assert metrics.samples("InferenceRouter", "CostUsd", {**sweeper, "model": "digits"})[0] == Samples.value(0.0)
    # Without prices the router emits no CostUsd (and the simulator none).
    assert metrics_without_prices().samples("InferenceRouter", "CostUsd", router) == [None]


def metrics_without_prices() -> SimulatedMetrics:
    return SimulatedMetrics([Minute(requests=10)], CAPACITY)


def test_the_endpoint_variants_publish_model_latency_in_microseconds_and_their_5xx() -> None:
    """Serverless: the endpoint's own time for each router call, past the router's deadline too; async: the jobs
    the instances worked through (4 a minute each, so 15 s a job), none failed; nothing in a minute without."""
    hung = Minute(requests=100, endpoint_ms=30_000.0)
    metrics = SimulatedMetrics([hung, Minute(jobs_succeeded=8), Minute()], CAPACITY)
    serverless = {"EndpointName": "s-iris", "VariantName": "AllTraffic"}
    latency = metrics.samples("AWS/SageMaker", "ModelLatency", serverless)
    # The histogram around the median: 50% at 0.8x, 30% at 1x (so p80 is the median), the tail at up to 3x.
    assert statistic(latency[:1], "p80") == 30_000_000  # 30 s, not the router's 19.7 s deadline
    assert statistic(latency[:1], "SampleCount") == 100
    assert latency[1:] == [None, None]
    asynchronous = {"EndpointName": "s-iris-async", "VariantName": "AllTraffic"}
    jobs = metrics.samples("AWS/SageMaker", "ModelLatency", asynchronous)
    assert jobs[0] is None
    assert jobs[2] is None
    assert statistic(jobs[1:2], "p80") == 15_000_000
    assert statistic(jobs[1:2], "SampleCount") == 8
    errors = metrics.samples("AWS/SageMaker", "Invocation5XXErrors", asynchronous)
    assert [None if sample is None else statistic([sample], "Sum") for sample in errors] == [None, 0, None]
    with pytest.raises(UnknownMetricError, match="nothing publishes EndpointName='s-iris-async'"):
        SimulatedMetrics([hung], replace(CAPACITY, async_endpoints=())).samples(
            "AWS/SageMaker", "ModelLatency", asynchronous
        )


def scenario_day(name: str) -> SimulatedMetrics:
    return SimulatedMetrics(next(s for s in SCENARIOS if s.name == name).build(), CAPACITY)


def test_the_drift_job_publishes_its_largest_feature_psi_once_a_day_per_model() -> None:
    per_model = {"service": "inference-drift", "model": "iris"}
    drifted = scenario_day("feature-drift").samples("InferenceRouter", "MaxFeaturePsi", per_model)
    published = [(minute, statistic([s], "Maximum")) for minute, s in enumerate(drifted) if s is not None]
    assert published == [(60, 5.56)]
    steady = scenario_day("healthy-day").samples("InferenceRouter", "MaxFeaturePsi", per_model)
    assert statistic(steady, "Maximum") == pytest.approx(0.005)
    assert statistic(steady, "SampleCount") == 1
    # No captures on a day without requests: the job publishes nothing.
    assert set(scenario_day("idle-day").samples("InferenceRouter", "MaxFeaturePsi", per_model)) == {None}
    with pytest.raises(UnknownMetricError, match="not published with dimensions"):
        scenario_day("feature-drift").samples("InferenceRouter", "MaxFeaturePsi", {"service": "inference-drift"})
