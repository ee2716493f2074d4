"""The stage's dashboards: an overview in the platform stack, one per model in its stack, each widget naming the
metrics and dimensions the router, the async pipeline and AWS emit (read from the synthesized DashboardBody)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest
from aws_cdk import App, CfnElement, Stack
from constructs import IConstruct

from functions.config.models import load_models_config
from infra.constructs.dashboards import dashboard_name
from infra.constructs.model_dashboard import ModelDashboard
from tests.helpers.synth import Synthesized, SynthesizedStack

pytestmark = pytest.mark.infra

# CloudWatch quotas: at most 500 widgets on a dashboard.
MAX_WIDGETS = 500
ROUTER = {"service": "inference-router"}


def resolved(value: Any) -> str:
    """A DashboardBody's text, each CloudFormation reference written as <Ref id> or <GetAtt id.attr>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(resolved(part) for part in parts)
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    if "Fn::GetAtt" in value:
        return f"<GetAtt {'.'.join(value['Fn::GetAtt'])}>"
    return "<token>"


@dataclass(frozen=True)
class GraphMetric:
    namespace: str
    name: str
    dimensions: dict[str, str]
    options: dict[str, Any]

    @property
    def stat(self) -> str:
        """A graph metric's statistic; CDK leaves out the dashboard's default, Average."""
        return str(self.options.get("stat", "Average"))


@dataclass(frozen=True)
class Dashboard:
    name: str
    body: dict[str, Any]

    @property
    def widgets(self) -> list[dict[str, Any]]:
        widgets: list[dict[str, Any]] = self.body["widgets"]
        return widgets

    def titles(self) -> list[str]:
        return [widget["properties"]["title"] for widget in self.widgets if "title" in widget["properties"]]

    def metrics(self, title: str | None = None) -> list[GraphMetric]:
        """Every plain metric of the graphs (of the one titled ``title``), its dimensions as a dict."""
        found = []
        for widget in self.widgets:
            properties = widget["properties"]
            if title is not None and properties.get("title") != title:
                continue
            for row in properties.get("metrics", []):
                *fields, options = row if isinstance(row[-1], dict) else [*row, {}]
                if not fields:
                    continue
                namespace, name, *pairs = fields
                found.append(GraphMetric(namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options))
        return found

    def expressions(self, title: str | None = None) -> list[str]:
        return [
            row[-1]["expression"]
            for widget in self.widgets
            if title is None or widget["properties"].get("title") == title
            for row in widget["properties"].get("metrics", [])
            if isinstance(row[-1], dict) and "expression" in row[-1]
        ]

    def find(self, namespace: str, name: str, **dimensions: str) -> list[GraphMetric]:
        return [
            metric
            for metric in self.metrics()
            if (metric.namespace, metric.name, metric.dimensions) == (namespace, name, dimensions)
        ]


def dashboards(stack: SynthesizedStack) -> list[Dashboard]:
    return [
        Dashboard(
            resource["Properties"]["DashboardName"], json.loads(resolved(resource["Properties"]["DashboardBody"]))
        )
        for resource in stack.resources("AWS::CloudWatch::Dashboard").values()
    ]


def logical_id(stage: Synthesized, construct: IConstruct) -> str:
    resource = construct.node.default_child
    assert isinstance(resource, CfnElement)
    return stage.stack.get_logical_id(resource)


def only_dashboard(stack: SynthesizedStack) -> Dashboard:
    [dashboard] = dashboards(stack)
    return dashboard


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest) -> Synthesized:
    synthesized: Synthesized = request.getfixturevalue(request.param)
    return synthesized


def test_each_stage_has_one_overview_and_one_dashboard_per_model_named_by_stage(stage: Synthesized) -> None:
    assert only_dashboard(stage.platform).name == f"InferenceRouter-{stage.stage}"
    assert sorted(only_dashboard(stack).name for stack in stage.models.values()) == [
        f"InferenceRouter-{stage.stage}-{model}" for model in sorted(stage.models)
    ]
    for stack in stage.all:
        assert len(only_dashboard(stack).widgets) < MAX_WIDGETS


def test_the_overview_shows_every_model_by_search_and_names_no_model(stage: Synthesized) -> None:
    overview = only_dashboard(stage.platform)
    for percentile in ("p50", "p95", "p99"):
        assert overview.expressions(f"Latency {percentile} by model") == [
            'SEARCH(\'{InferenceRouter,model,service} MetricName="Latency" service="inference-router"\', '
            f"'{percentile}', 60)"
        ]
    for title, metric_name in (
        ("Requests by model", "Requests"),
        ("5xx by model", "ServerErrors"),
        ("4xx by model", "ClientErrors"),
        ("Degraded requests by model", "DegradedRequests"),
    ):
        assert overview.expressions(title) == [
            f'SEARCH(\'{{InferenceRouter,model,service}} MetricName="{metric_name}" service="inference-router"\', '
            "'Sum', 60)"
        ]
    assert overview.expressions("In-Lambda models: latency p99") == [
        'SEARCH(\'{InferenceRouter,model,route,service} MetricName="Latency" service="inference-router" '
        "route=\"lambda\"', 'p99', 60)"
    ]
    # The dimension sets Powertools writes for the router's single metrics (it adds "service").
    assert overview.expressions("Degraded answers by model, reason and cause") == [
        "SEARCH('{InferenceRouter,cause,model,reason,service} MetricName=\"DegradedAnswers\"', 'Sum', 60)"
    ]
    assert overview.expressions("Circuit transitions by endpoint and state") == [
        "SEARCH('{InferenceRouter,endpoint,service,state} MetricName=\"BreakerTransitions\"', 'Sum', 60)"
    ]
    # Adding a model must not change the platform stack (tests/infra/test_many_models.py): no model is named.
    body = json.dumps(overview.body)
    for model in stage.models:
        assert f'model=\\"{model}\\"' not in body


def test_the_overview_shows_the_router_cold_starts_and_provisioned_concurrency(stage: Synthesized) -> None:
    overview = only_dashboard(stage.platform)
    function = logical_id(stage, stage.stack.router.function)
    on_alias = {"FunctionName": f"<Ref {function}>", "Resource": f"<Ref {function}>:live"}
    assert overview.find("AWS/Lambda", "Duration", **on_alias), "the stock Lambda monitor graphs the live alias"
    assert overview.expressions("Cold-start rate") == ["100 * FILL(part, 0) / invocations"]
    [cold, invocations] = overview.metrics("Cold-start rate")
    assert (cold.namespace, cold.name, cold.dimensions, cold.stat) == (
        "InferenceRouter",
        "ColdStarts",
        ROUTER,
        "Sum",
    )
    assert (invocations.name, invocations.dimensions, invocations.stat) == ("Invocations", on_alias, "Sum")
    [alias] = stage.platform.resources("AWS::Lambda::Alias").values()
    provisioned = "ProvisionedConcurrencyConfig" in alias["Properties"]
    assert provisioned == (stage.stage == "prod")
    pc_titles = {"Provisioned concurrency utilization", "Spillover beyond provisioned concurrency"}
    assert (pc_titles <= set(overview.titles())) == provisioned
    if provisioned:
        assert overview.find("AWS/Lambda", "ProvisionedConcurrencyUtilization", **on_alias)
        [spill, _] = overview.metrics("Spillover beyond provisioned concurrency")
        assert (spill.name, spill.dimensions, spill.stat) == (
            "ProvisionedConcurrencySpilloverInvocations",
            on_alias,
            "Sum",
        )


def test_the_overview_shows_the_api_the_async_jobs_and_the_dead_letter_queue(stage: Synthesized) -> None:
    overview = only_dashboard(stage.platform)
    api_name = stage.stack.stack_name
    assert any(
        metric.namespace == "AWS/ApiGateway"
        and metric.name == "5XXError"
        and metric.dimensions == {"ApiName": api_name, "Stage": stage.stage}
        for metric in overview.metrics()
    )
    assert overview.find("InferenceRouter", "JobsSucceeded", service="inference-results")
    assert overview.find("InferenceRouter", "JobsFailed", service="inference-results")
    assert overview.find("InferenceRouter", "OldestOpenJobAgeSeconds", service="inference-sweeper")
    assert overview.find("InferenceRouter", "MismatchedNotifications", service="inference-results")
    assert overview.find("InferenceRouter", "UnhandledErrors", **ROUTER)
    assert overview.expressions("Jobs settled by the sweeper") == [
        'SEARCH(\'{InferenceRouter,service} service="inference-sweeper" NOT MetricName="OldestOpenJobAgeSeconds"\', '
        "'Sum', 60)"
    ]
    assert "SEARCH('{InferenceRouter,marker,service} MetricName=\"JobsQueuedUnrecorded\"', 'Sum', 60)" in (
        overview.expressions("Anomalies")
    )
    dead_letter_queue = logical_id(stage, stage.stack.storage.dead_letter_queue)
    assert overview.find(
        "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=f"<GetAtt {dead_letter_queue}.QueueName>"
    )


def test_a_model_dashboard_shows_its_router_metrics_and_its_serverless_endpoint(stage: Synthesized) -> None:
    for model, stack in stage.models.items():
        dashboard = only_dashboard(stack)
        of_model = {**ROUTER, "model": model}
        assert [metric.stat for metric in dashboard.metrics("Latency (router total)") if metric.name == "Latency"] == [
            "p50",
            "p95",
            "p99",
        ]
        assert {metric.dimensions == of_model for metric in dashboard.metrics("Latency (router total)")} == {True}
        assert [(metric.name, metric.stat) for metric in dashboard.metrics("Requests and status")] == [
            ("Requests", "Sum"),
            ("ClientErrors", "Sum"),
            ("ServerErrors", "Sum"),
            ("DegradedRequests", "Sum"),
            ("SlowRequests", "Sum"),
        ]
        assert {metric.dimensions == of_model for metric in dashboard.metrics("Requests and status")} == {True}
        assert dashboard.expressions("Degraded answers by reason and cause") == [
            'SEARCH(\'{InferenceRouter,cause,model,reason,service} MetricName="DegradedAnswers" '
            f"model=\"{model}\"', 'Sum', 60)"
        ]
        endpoint = stack.stack.endpoint.serverless_endpoint_name  # type: ignore[attr-defined]
        assert endpoint is not None
        async_endpoint = stack.stack.endpoint.async_endpoint_name  # type: ignore[attr-defined]
        routes = {"serverless": endpoint, **({"async": async_endpoint} if async_endpoint else {})}
        assert dashboard.expressions("Circuit transitions") == [
            'SEARCH(\'{InferenceRouter,endpoint,service,state} MetricName="BreakerTransitions" '
            f"endpoint=\"{name}\"', 'Sum', 60)"
            for name in routes.values()
        ]
        assert {frozenset(metric.dimensions.items()) for metric in dashboard.metrics("Time in the endpoint call")} == {
            frozenset({**of_model, "route": route}.items()) for route in routes
        }
        variant = {"EndpointName": endpoint, "VariantName": "AllTraffic"}
        for metric_name in ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors"):
            assert dashboard.find("AWS/SageMaker", metric_name, **variant), metric_name
        assert [metric.stat for metric in dashboard.metrics("Model latency")] == ["p50", "p95", "p99"]
        assert {metric.name for metric in dashboard.metrics("Model latency")} == {"ModelLatency"}
        assert {metric.name for metric in dashboard.metrics("Model setup time (cold starts)")} == {"ModelSetupTime"}
        # SageMaker reports both in microseconds; the graphs show milliseconds.
        assert set(dashboard.expressions("Model latency")) == {f"latency{p} / 1000" for p in ("p50", "p95", "p99")}
        provisioned = stage.stage == "prod"
        pc = dashboard.metrics("Provisioned concurrency")
        assert bool(pc) == provisioned
        if provisioned:
            # The statistics SageMaker documents for these metrics: Average, Maximum, Minimum.
            assert {(metric.name, metric.stat) for metric in pc} == {
                ("ServerlessProvisionedConcurrencyUtilization", "Maximum"),
                ("ServerlessProvisionedConcurrencySpilloverInvocations", "Maximum"),
                ("ServerlessProvisionedConcurrencySpilloverInvocations", "Average"),
            }
            assert {json.dumps(metric.dimensions, sort_keys=True) for metric in pc} == {
                json.dumps(variant, sort_keys=True)
            }


def synth_model_dashboard(**props: Any) -> Dashboard:
    app = App()
    stack = Stack(app, "Dashboards")
    ModelDashboard(stack, "Dashboard", stage="prod", model="fraud.v2", **props)
    template = app.synth().get_stack_by_name("Dashboards").template
    [resource] = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    return Dashboard(
        resource["Properties"]["DashboardName"], json.loads(resolved(resource["Properties"]["DashboardBody"]))
    )


def test_a_model_with_an_async_endpoint_shows_its_backlog_oldest_request_and_failures() -> None:
    dashboard = synth_model_dashboard(serverless_endpoints=[], async_endpoints=["prod-fraud-async"])
    assert dashboard.name == "InferenceRouter-prod-fraud_v2"
    by_endpoint = {"EndpointName": "prod-fraud-async"}
    # The queue belongs to the endpoint: these carry no VariantName.
    for metric_name in ("ApproximateBacklogSize", "HasBacklogWithoutCapacity", "ApproximateAgeOfOldestRequest"):
        assert dashboard.find("AWS/SageMaker", metric_name, **by_endpoint), metric_name
    per_variant = {**by_endpoint, "VariantName": "AllTraffic"}
    assert dashboard.find("AWS/SageMaker", "InvocationFailures", **per_variant)
    assert dashboard.find("AWS/SageMaker", "ExpiredRequests", **per_variant)
    assert {frozenset(metric.dimensions.items()) for metric in dashboard.metrics("Time in the endpoint call")} == {
        frozenset({**ROUTER, "model": "fraud.v2", "route": "async"}.items())
    }
    assert not dashboard.metrics("Model latency"), "no serverless endpoint, no serverless widgets"


def test_dashboard_names_use_only_the_characters_cloudwatch_allows() -> None:
    assert dashboard_name("prod") == "InferenceRouter-prod"
    assert dashboard_name("prod", "fraud.v2_b-3") == "InferenceRouter-prod-fraud_v2_b-3"
    assert re.fullmatch(r"[A-Za-z0-9_-]+", dashboard_name("dev", "a.b.c"))


COST_PER_1000 = "1000 * (FILL(router, 0) + FILL(sweeper, 0)) / requests"


def cost_reads(dashboard: Dashboard, title: str) -> set[tuple[str, str, int]]:
    """(metric, dimensions as text, period) of each metric a cost widget's expression reads, all as Sum."""
    metrics = dashboard.metrics(title)
    assert {metric.stat for metric in metrics} == {"Sum"}
    return {(m.name, json.dumps(m.dimensions, sort_keys=True), m.options["period"]) for m in metrics}


def test_each_model_dashboard_shows_its_hourly_cost_per_1000_predictions(stage: Synthesized) -> None:
    for model, stack in stage.models.items():
        dashboard = only_dashboard(stack)
        title = "Cost per 1,000 predictions (USD)"
        assert dashboard.expressions(title) == [COST_PER_1000]
        of = {"model": model}
        assert cost_reads(dashboard, title) == {
            ("CostUsd", json.dumps({**of, **ROUTER}, sort_keys=True), 3600),
            ("CostUsd", json.dumps({**of, "service": "inference-sweeper"}, sort_keys=True), 3600),
            ("Requests", json.dumps({**of, **ROUTER}, sort_keys=True), 3600),
        }


def test_the_overview_shows_the_stage_cost_and_the_in_router_models_cost(stage: Synthesized) -> None:
    overview = only_dashboard(stage.platform)
    title = "Cost per 1,000 predictions, stage (USD)"
    assert overview.expressions(title) == [COST_PER_1000]
    # The service-only rollups: the stage's total needs no SEARCH.
    assert cost_reads(overview, title) == {
        ("CostUsd", json.dumps(ROUTER), 3600),
        ("CostUsd", json.dumps({"service": "inference-sweeper"}), 3600),
        ("Requests", json.dumps(ROUTER), 3600),
    }
    assert overview.expressions("Cost per day, stage (USD)") == ["FILL(router, 0) + FILL(sweeper, 0)"]
    assert {m[0] + m[1] for m in cost_reads(overview, "Cost per day, stage (USD)")} == {
        "CostUsd" + json.dumps(ROUTER),
        "CostUsd" + json.dumps({"service": "inference-sweeper"}),
    }
    assert {m[2] for m in cost_reads(overview, "Cost per day, stage (USD)")} == {86400}
    # A model in the router has no stack of its own: its cost widget is here.
    in_router = [m.name for m in load_models_config().models if m.name not in stage.models]
    assert in_router, "the default config ships a model in the router"
    for model in in_router:
        title = f"Cost per 1,000 predictions, {model} (USD)"
        assert overview.expressions(title) == [COST_PER_1000]
        assert ("Requests", json.dumps({"model": model, **ROUTER}, sort_keys=True), 3600) in cost_reads(overview, title)
