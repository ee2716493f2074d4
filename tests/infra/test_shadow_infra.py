"""The shadow worker in both stages: with a shadow version in the model config, the platform deploys the
worker (its environment, invoke scope, failure destination) and a subscription filter on the router's log group
that passes only the shadow lines; without one, none of it. No alarm: a shadow's failures are counted, never
paged."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.constructs.capture import FILTER_PATTERN as CAPTURE_FILTER_PATTERN
from infra.constructs.shadow import FILTER_PATTERN, HANDLER, MAX_CONCURRENCY, SHADOW_TIMEOUT_MS
from tests.helpers.synth import Synthesized, ref_id, synthesize
from tests.infra.test_dashboards import dashboards

SHADOW_VERSION: dict[str, Any] = {
    "version": "2",
    "route": {"sync": "serverless", "serverless_endpoint": "iris-shadow"},
    "shadow": {"sample_rate": 0.25},
}


def with_shadow() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["versions"] = [copy.deepcopy(SHADOW_VERSION)]
    return document


@pytest.fixture(scope="module", params=["dev", "prod"])
def shadowed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    # synthesize() runs cdk-nag over every stack: an unacknowledged finding raises here.
    folder = tmp_path_factory.mktemp(f"shadow-{request.param}")
    (folder / "models.json").write_text(json.dumps(with_shadow()))
    return synthesize(request.param, folder / "out", models=load_models_config(folder / "models.json"))


def shadow_subscriptions(synth: Synthesized) -> list[dict[str, Any]]:
    """The router log group's subscription filters other than the capture delivery's."""
    filters = synth.platform.resources("AWS::Logs::SubscriptionFilter").values()
    return [f for f in filters if f["Properties"]["FilterPattern"] != CAPTURE_FILTER_PATTERN]


def worker(synth: Synthesized) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = synth.platform.resources("AWS::Lambda::Function", {"Handler": HANDLER}).items()
    return logical_id, function["Properties"]


def statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.platform.resources("AWS::IAM::Policy").values():
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def test_the_worker_runs_on_graviton_python_314_with_its_settings(shadowed: Synthesized) -> None:
    _, props = worker(shadowed)
    assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
    variables = props["Environment"]["Variables"]
    assert variables["ENDPOINT_NAME_PREFIX"] == f"{shadowed.stage}-"
    assert variables["SHADOW_TIMEOUT_MS"] == str(SHADOW_TIMEOUT_MS)
    assert variables["POWERTOOLS_SERVICE_NAME"] == "inference-router-shadow"
    assert props["ReservedConcurrentExecutions"] == MAX_CONCURRENCY


def test_the_router_log_group_feeds_only_shadow_lines_to_the_worker(shadowed: Synthesized) -> None:
    worker_id, _ = worker(shadowed)
    [subscription] = shadow_subscriptions(shadowed)
    props = subscription["Properties"]
    assert props["FilterPattern"] == '{ $.shadow_request.model = "*" }'
    assert props["FilterPattern"] == FILTER_PATTERN.log_pattern_string
    assert ref_id(props["DestinationArn"]) == worker_id
    [router] = shadowed.platform.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    assert ref_id(props["LogGroupName"]) == ref_id(router["Properties"]["LoggingConfig"]["LogGroup"])
    # CloudWatch Logs may invoke the worker, from the router's log group only.
    permissions = shadowed.platform.resources("AWS::Lambda::Permission", {"Principal": "logs.amazonaws.com"})
    assert [ref_id(p["Properties"]["FunctionName"]) for p in permissions.values()] == [worker_id]


def test_the_worker_may_only_invoke_the_stages_endpoints(shadowed: Synthesized) -> None:
    _, props = worker(shadowed)
    granted = statements(shadowed, ref_id(props["Role"]))
    sagemaker = [s for s in granted if any(str(a).startswith("sagemaker:") for a in _list(s["Action"]))]
    [statement] = sagemaker
    assert _list(statement["Action"]) == ["sagemaker:InvokeEndpoint"]
    resource = json.dumps(statement["Resource"])
    assert f":endpoint/{shadowed.stage}-*" in resource
    assert not any(s["Resource"] == "*" and "sagemaker" in json.dumps(s["Action"]) for s in granted)


def test_a_failed_invocation_goes_to_the_failure_queue_without_retries(shadowed: Synthesized) -> None:
    worker_id, _ = worker(shadowed)
    # The shadow worker's (the drift job has its own).
    [config] = [
        c for c in shadowed.platform.resources("AWS::Lambda::EventInvokeConfig").values() if worker_id in str(c)
    ]
    props = config["Properties"]
    assert ref_id(props["FunctionName"]) == worker_id
    assert props["MaximumRetryAttempts"] == 0
    assert props["MaximumEventAgeInSeconds"] == 3600
    destination = props["DestinationConfig"]["OnFailure"]["Destination"]
    queue_id = ref_id(destination)
    assert shadowed.platform.json["Resources"][queue_id]["Type"] == "AWS::SQS::Queue"


def test_no_alarm_watches_the_shadow(shadowed: Synthesized) -> None:
    for stack in shadowed.all:
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values():
            assert "Shadow" not in json.dumps(alarm["Properties"]), alarm


SHADOW_DIMENSIONS = {"service": "inference-router-shadow", "model": "iris", "version": "2"}
SHADOW_TITLES = [
    "Shadow agreement with the primary",
    "Shadow requests, errors and skipped copies",
    "Shadow p99 vs primary p99",
]


def test_the_model_dashboard_shows_the_shadows_agreement_errors_and_p99(shadowed: Synthesized) -> None:
    [dashboard] = dashboards(shadowed.models["iris"])
    assert [title for title in dashboard.titles() if title.startswith("Shadow")] == SHADOW_TITLES
    [agreement] = dashboard.expressions("Shadow agreement with the primary")
    assert "100 * agreements / (requests - errors)" in agreement
    counted = {(m.name, m.stat) for m in dashboard.metrics("Shadow agreement with the primary")}
    assert counted == {("ShadowAgreements", "Sum"), ("ShadowRequests", "Sum"), ("ShadowErrors", "Sum")}
    for metric in dashboard.metrics("Shadow agreement with the primary"):
        assert metric.dimensions == SHADOW_DIMENSIONS
    latency = dashboard.metrics("Shadow p99 vs primary p99")
    assert {(m.name, m.stat, m.dimensions.get("service")) for m in latency} == {
        ("ShadowLatency", "p99", "inference-router-shadow"),
        ("EndpointLatency", "p99", "inference-router"),
        ("Latency", "p99", "inference-router"),
    }
    assert all(m.dimensions["model"] == "iris" for m in latency)


def test_without_a_shadow_version_there_is_no_worker_nor_subscription(dev: Synthesized, prod: Synthesized) -> None:
    for synth in (dev, prod):
        assert not synth.platform.resources("AWS::Lambda::Function", {"Handler": HANDLER})
        assert not shadow_subscriptions(synth)
        assert synth.stack.shadow is None
        [dashboard] = dashboards(synth.models["iris"])
        assert not [title for title in dashboard.titles() if title.startswith("Shadow")]


def test_the_shadowed_stage_is_cfn_lint_clean(shadowed: Synthesized) -> None:
    from cfnlint.api import ManualArgs, lint_file

    from tests.infra.test_guardrails import CFN_LINT_IGNORED

    for stack in shadowed.all:
        matches = lint_file(Path(stack.template_path), config=ManualArgs(ignore_checks=CFN_LINT_IGNORED))
        assert not matches, f"{stack.name}:\n" + "\n".join(str(match) for match in matches)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
