"""A stage's alarms run through every scenario: the scenario x alarm table ``make alarms`` prints.

The stage is synthesized offline (as ``cdk synth`` would, cdk-nag included) and its alarms read from the
templates; the capacities the traffic model needs (provisioned concurrency, endpoints, models) come from the
same stage config.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from functions.config.models import load_models_config
from functions.config.prices import ServerlessSize
from functions.domain.cost import RequestCosting
from infra.app import build_app, new_app
from infra.config.loader import load_stage_config
from ops.alarm_simulator.emitters import SimulatedMetrics
from ops.alarm_simulator.engine import evaluate_alarms, fired
from ops.alarm_simulator.scenarios import SCENARIOS, Scenario
from ops.alarm_simulator.template import StackTemplate, StageAlarm, router_latency_targets, stage_alarms
from ops.alarm_simulator.traffic import Capacity


@dataclass(frozen=True, slots=True)
class StageRun:
    stage: str
    alarms: list[StageAlarm]
    fired: dict[str, dict[str, bool]]  # scenario -> alarm name -> fired

    def pages_fired(self, scenario: str) -> list[str]:
        return [
            entry.alarm.name for entry in self.alarms if entry.kind == "page" and self.fired[scenario][entry.alarm.name]
        ]


def stage_capacity(stage_name: str, templates: list[StackTemplate]) -> Capacity:
    models = load_models_config()
    stage = load_stage_config(stage_name, models=models)
    serverless: dict[str, int] = {}
    asynchronous: list[str] = []
    sizes: dict[str, ServerlessSize] = {}
    endpoints_by_model: dict[str, str] = {}
    instance_types: dict[str, str] = {}
    for model in models.models:
        if model.name not in stage.models:
            continue
        route = model.route
        if route.serverless_endpoint is not None:
            name, endpoint = route.serverless_endpoint, stage.serverless_endpoints[route.serverless_endpoint]
            serverless[stage.endpoint_name(name)] = endpoint.provisioned_concurrency
            sizes[stage.endpoint_name(name)] = ServerlessSize(endpoint.memory_mb, endpoint.provisioned_concurrency)
            endpoints_by_model[model.name] = stage.endpoint_name(name)
        if route.async_endpoint is not None:
            asynchronous.append(stage.endpoint_name(route.async_endpoint))
            instance_types[model.name] = stage.async_endpoints[route.async_endpoint].instance_type
    # The router publishes per-model metrics for every model it serves: SageMaker-deployed or in-Lambda.
    deployed = tuple(
        model.name for model in models.models if model.name in stage.models or model.route.sync == "lambda"
    )
    return Capacity(
        router_provisioned=stage.router.provisioned_concurrency,
        router_reserved=stage.router.reserved_concurrency,
        serverless_provisioned=serverless,
        async_endpoints=tuple(asynchronous),
        models=deployed,
        latency_targets_ms=router_latency_targets(templates, deployed),
        deadline_ms=stage.router.invoke_budget_ms - stage.router.response_reserve_ms,
        costing=RequestCosting(
            stage.prices, stage.router.memory_mb, stage.router.provisioned_concurrency > 0, sizes.get
        ),
        serverless_endpoints=endpoints_by_model,
        async_instance_types=instance_types,
        sweep_interval_s=stage.async_storage.sweep_interval_minutes * 60,
    )


def synthesized_templates(stage_name: str, outdir: Path) -> list[StackTemplate]:
    app = new_app(stage=stage_name, outdir=str(outdir))
    stacks = build_app(app)
    assembly = app.synth()
    models = {stack.stack_name: model for model, stack in stacks.models.items()}
    return [
        StackTemplate(
            stack.stack_name,
            models.get(stack.stack_name),
            json.loads((outdir / assembly.get_stack_artifact(stack.artifact_id).template_file).read_text()),
        )
        for stack in stacks.all
    ]


def run_stage(stage_name: str, templates: list[StackTemplate], scenarios: tuple[Scenario, ...] = SCENARIOS) -> StageRun:
    alarms = stage_alarms(templates)
    capacity = stage_capacity(stage_name, templates)
    outcome: dict[str, dict[str, bool]] = {}
    for scenario in scenarios:
        states = evaluate_alarms([entry.alarm for entry in alarms], SimulatedMetrics(scenario.build(), capacity))
        outcome[scenario.name] = {name: fired(timeline) for name, timeline in states.items()}
    return StageRun(stage_name, alarms, outcome)


def simulate(stage_name: str) -> StageRun:
    with tempfile.TemporaryDirectory(prefix=f"alarms-{stage_name}-") as outdir:
        templates = synthesized_templates(stage_name, Path(outdir))
    return run_stage(stage_name, templates)


def table(run: StageRun) -> str:
    """Markdown: one row per alarm (its kind), one column per scenario, FIRES or a dot."""
    scenarios = list(run.fired)
    header = ["alarm", "kind", *scenarios]
    rows = [
        [entry.alarm.name, entry.kind, *("FIRES" if run.fired[s][entry.alarm.name] else "." for s in scenarios)]
        for entry in sorted(run.alarms, key=lambda e: (e.kind, e.alarm.name))
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) + " |"
        for row in [header, ["-" * width for width in widths], *rows]
    ]
    return f"Stage {run.stage}: {len(run.alarms)} alarms x {len(scenarios)} scenarios\n\n" + "\n".join(lines)


def as_json(run: StageRun) -> dict[str, object]:
    return {
        "stage": run.stage,
        "alarms": {entry.alarm.name: entry.kind for entry in run.alarms},
        "fired": run.fired,
    }
