"""Every alarm of both stages, as synthesized, run through the simulator's scenarios: each page fires in the
incident it exists for, and none fires on a healthy day, an idle night, a burst above provisioned concurrency
or one 503 in a quiet minute."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from ops.alarm_simulator.report import StageRun, as_json, run_stage, table
from ops.alarm_simulator.scenarios import SCENARIO_NAMES, SCENARIOS
from ops.alarm_simulator.template import StackTemplate
from tests.helpers.synth import Synthesized

# Each page (by runbook name, every model's copy alike) and the scenario it exists for.
PAGE_INCIDENTS: dict[str, str] = {
    "async-backlog-without-capacity": "async-stuck-at-zero",
    "async-forged-notifications": "forged-notifications",
    "async-oldest-open-job-age": "sweeper-dead",
    "async-oldest-request-age": "async-stuck-at-zero",
    "circuit-open": "outage-with-fallback",
    "degraded-answers-sustained": "outage-with-fallback",
    "dlq-not-empty": "poison-dlq",
    "router-errors": "router-timeouts",
    "router-throttles": "flood",
    "router-unhandled-errors": "router-bug",
    "slo-availability-burn": "outage-no-fallback",
    "slo-latency-burn": "slow-endpoint",
}
# Each ticket with a scenario that proves it. router-duration-near-timeout has none: the router answers 504 at its
# own deadline (invoke budget less the response reserve, 19.7 s in both stages), under the ticket's 80% of the
# 25 s timeout, so only a router whose deadline failed reaches it (endpoint-hangs shows it quiet).
TICKET_INCIDENTS: dict[str, str] = {
    "router-pc-low-utilization": "idle-day",
    "serverless-pc-low-utilization": "idle-day",
    "router-pc-spillover": "slow-endpoint",
    "serverless-pc-spillover": "slow-endpoint",
    "serverless-5xx-errors": "outage-no-fallback",
    "cost-per-1000-predictions": "idle-async-instance",
    "feature-drift": "feature-drift",
}
UNPROVEN_TICKETS = {"router-duration-near-timeout"}
# The endpoint rollback alarms (infra/constructs/endpoint_deployment.py) link no runbook: named by construct path.
# Like the router's CodeDeploy rollback alarms they notify no topic (kind "-"): SageMaker acts on them while an
# update bakes. At rollback_5xx_per_minute 0 the serverless one is in ALARM on any minute with a 5XX, so one
# stray 5XX in 5,000 requests trips it on an ordinary day; with a topic that would be a ticket every day.
_ROLLBACK = re.compile(r"Endpoint(Serverless|Async)DeploymentRollback(5xxErrors|ModelLatency)$")
QUIET = [scenario.name for scenario in SCENARIOS if scenario.quiet]
STAGES = ("dev", "prod")


def templates(synth: Synthesized) -> list[StackTemplate]:
    return [
        StackTemplate(synth.platform.name, None, synth.platform.json),
        *(StackTemplate(stack.name, model, stack.json) for model, stack in synth.models.items()),
    ]


@pytest.fixture(scope="module")
def runs(synth: Callable[[str], Synthesized]) -> dict[str, StageRun]:
    return {stage: run_stage(stage, templates(synth(stage))) for stage in STAGES}


def base_name(alarm_name: str) -> str:
    return alarm_name.split(" [", 1)[0]


def ticket_name(alarm_name: str) -> str:
    """The ticket's runbook name, or for an endpoint rollback alarm its endpoint type and metric."""
    base = base_name(alarm_name)
    match = _ROLLBACK.search(base)
    return f"{match.group(1).lower()}-rollback-{match.group(2)}" if match else base


def pages(run: StageRun) -> list[str]:
    return [entry.alarm.name for entry in run.alarms if entry.kind == "page"]


def test_the_expectations_name_real_scenarios_and_the_quiet_ones_are_the_agreed_ones() -> None:
    assert set(PAGE_INCIDENTS.values()) <= set(SCENARIO_NAMES)
    assert set(TICKET_INCIDENTS.values()) <= set(SCENARIO_NAMES)
    assert set(QUIET) == {
        "healthy-day", "idle-night", "idle-day", "burst-above-pc", "one-503-quiet", "idle-async-instance",
        "feature-drift",
    }  # fmt: skip


@pytest.mark.parametrize("stage", STAGES)
def test_every_page_has_an_incident_scenario(runs: dict[str, StageRun], stage: str) -> None:
    unexpected = sorted({base_name(name) for name in pages(runs[stage])} - set(PAGE_INCIDENTS))
    assert not unexpected, f"{stage}: pages with no incident scenario in PAGE_INCIDENTS: {unexpected}"


@pytest.mark.parametrize("stage", STAGES)
def test_every_page_fires_in_its_incident(runs: dict[str, StageRun], stage: str) -> None:
    run = runs[stage]
    silent = [name for name in pages(run) if not run.fired[PAGE_INCIDENTS[base_name(name)]][name]]
    assert not silent, f"{stage}: pages that stay quiet in their incident: {silent}"


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("scenario", QUIET)
def test_no_page_fires_when_nothing_is_wrong(runs: dict[str, StageRun], stage: str, scenario: str) -> None:
    assert runs[stage].pages_fired(scenario) == []


@pytest.mark.parametrize("stage", STAGES)
def test_every_ticket_fires_in_its_scenario_and_none_on_a_healthy_day(runs: dict[str, StageRun], stage: str) -> None:
    run = runs[stage]
    tickets = [entry.alarm.name for entry in run.alarms if entry.kind == "ticket"]
    unknown = sorted({ticket_name(name) for name in tickets} - set(TICKET_INCIDENTS) - UNPROVEN_TICKETS)
    assert not unknown, f"{stage}: tickets with no scenario in TICKET_INCIDENTS: {unknown}"
    proven = [name for name in tickets if ticket_name(name) in TICKET_INCIDENTS]
    silent = [name for name in proven if not run.fired[TICKET_INCIDENTS[ticket_name(name)]][name]]
    assert not silent, f"{stage}: tickets that stay quiet in their scenario: {silent}"
    noisy = sorted(name for name in tickets if run.fired["healthy-day"][name])
    assert not noisy, f"{stage}: tickets on a healthy day: {noisy}"


def test_the_duration_ticket_stays_quiet_when_the_router_deadline_caps_a_hanging_endpoint(
    runs: dict[str, StageRun],
) -> None:
    prod = runs["prod"]
    assert not prod.fired["endpoint-hangs"]["router-duration-near-timeout"]
    assert prod.fired["endpoint-hangs"]["slo-availability-burn [iris]"]


@pytest.mark.parametrize("stage", STAGES)
def test_every_incident_scenario_pages_someone(runs: dict[str, StageRun], stage: str) -> None:
    unheard = [
        scenario.name for scenario in SCENARIOS if not scenario.quiet and not runs[stage].pages_fired(scenario.name)
    ]
    assert not unheard, f"{stage}: incidents no page hears: {unheard}"


def test_prod_has_every_page_and_the_spillover_signals_are_tickets(runs: dict[str, StageRun]) -> None:
    prod = runs["prod"]
    assert {base_name(name) for name in pages(prod)} == set(PAGE_INCIDENTS)
    kinds = {base_name(entry.alarm.name): entry.kind for entry in prod.alarms}
    assert kinds["router-pc-spillover"] == kinds["serverless-pc-spillover"] == "ticket"
    # The burst spills over provisioned concurrency: a capacity ticket may say so, no page does.
    assert not prod.pages_fired("burst-above-pc")


def test_the_table_and_the_json_hold_every_alarm_and_scenario(runs: dict[str, StageRun]) -> None:
    prod = runs["prod"]
    text = table(prod)
    for entry in prod.alarms:
        assert f"| {entry.alarm.name} " in text
    assert all(name in text.splitlines()[2] for name in SCENARIO_NAMES)
    document = as_json(prod)
    assert set(document["fired"]) == set(SCENARIO_NAMES)  # type: ignore[arg-type]


@pytest.mark.parametrize("stage", STAGES)
def test_the_drift_ticket_fires_only_when_the_inputs_drifted(runs: dict[str, StageRun], stage: str) -> None:
    """The drift job publishes MaxFeaturePsi once a day: far over the 0.2 threshold when a column shifted, well
    under it on every other day (and nothing on a day without captures)."""
    # In the stack of each capturing model (iris here), so named with its model.
    drift = [entry.alarm.name for entry in runs[stage].alarms if base_name(entry.alarm.name) == "feature-drift"]
    assert drift == ["feature-drift [iris]"]
    fired = [scenario for scenario, alarms in runs[stage].fired.items() if alarms[drift[0]]]
    assert fired == ["feature-drift"]


@pytest.mark.parametrize("stage", STAGES)
def test_the_endpoint_rollback_alarms_follow_the_endpoint(runs: dict[str, StageRun], stage: str) -> None:
    """The rollback alarms notify no one (SageMaker acts on them). ModelLatency (microseconds) trips the serverless
    rollback when the endpoint is slow, never on a healthy day; 5XX at 0 a minute trips on any stray 5XX, a
    healthy day's included; the async endpoint never fails a job and its jobs (15 s, p99 45 s) stay under its
    60 s rollback latency, so only a bad release reaches its alarms."""
    run = runs[stage]
    rollbacks = {
        ticket_name(entry.alarm.name): entry.alarm.name
        for entry in run.alarms
        if "-rollback-" in ticket_name(entry.alarm.name)
    }
    assert set(rollbacks) == {
        f"{endpoint}-rollback-{metric}"
        for endpoint in ("serverless", "async")
        for metric in ("ModelLatency", "5xxErrors")
    }
    kinds = {entry.alarm.name: entry.kind for entry in run.alarms}
    assert {kinds[name] for name in rollbacks.values()} == {"-"}
    latency = rollbacks["serverless-rollback-ModelLatency"]
    assert [s for s, alarms in run.fired.items() if alarms[latency]] == ["slow-endpoint", "flood", "endpoint-hangs"]
    errors = rollbacks["serverless-rollback-5xxErrors"]
    assert run.fired["healthy-day"][errors]
    assert run.fired["outage-no-fallback"][errors]
    for name in ("async-rollback-ModelLatency", "async-rollback-5xxErrors"):
        assert not any(alarms[rollbacks[name]] for alarms in run.fired.values())


@pytest.mark.parametrize("stage", STAGES)
def test_the_cost_ticket_fires_only_for_the_idle_async_instance(runs: dict[str, StageRun], stage: str) -> None:
    """An async instance up all night for a trickle breaches 0.10 USD per 1,000 predictions; a diurnal day with
    async batches, a burst, idle hours and a quiet day of 2 requests a minute stay well under it."""
    fired = {scenario: alarms["cost-per-1000-predictions"] for scenario, alarms in runs[stage].fired.items()}
    assert [scenario for scenario, on in fired.items() if on] == ["idle-async-instance"]
