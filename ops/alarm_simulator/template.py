"""The alarms of a synthesized stage, read from its templates (platform stack + model stacks).

Each alarm is named by the runbook its description links (``<name>`` of ``.../<name>.md``, with `` [<model>]``
in a model stack), and classed by the topic its ALARM action notifies: ``page``, ``ticket``, or ``-`` (an
alarm that drives scaling, not people). Dimension values are rendered the way the simulated metrics are keyed:
a Lambda function as its service name (POWERTOOLS_SERVICE_NAME), an API stage as its stage name, a
dead-letter queue as ``dead-letter-queue``, literal strings as themselves.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from functions.config.telemetry import LATENCY_TARGETS_VARIABLE, ROUTER_SERVICE
from ops.alarm_simulator.engine import Alarm, CompositeAlarm, MetricAlarm, MetricStat, Query, SimulationError

DEAD_LETTER_QUEUE: Final[str] = "dead-letter-queue"
_RUNBOOK: Final[re.Pattern[str]] = re.compile(r"Runbook: (\S+)")
_TOPIC_PREFIX: Final[str] = "Inference router "


@dataclass(frozen=True, slots=True)
class StackTemplate:
    name: str
    model: str | None  # the model of a model stack; None for the platform
    json: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class StageAlarm:
    alarm: Alarm
    kind: str  # page | ticket | -


class _Renderer:
    def __init__(self, stacks: list[StackTemplate]) -> None:
        self.stacks = stacks
        self.platform = next(stack for stack in stacks if stack.model is None)
        self.names: dict[tuple[str, str], str] = {}

    def resource(self, stack: StackTemplate, logical_id: str) -> tuple[StackTemplate, str, dict[str, Any]]:
        """The resource a Ref names, following a model stack's SSM parameter to the platform's resource."""
        resources = stack.json.get("Resources", {})
        if logical_id in resources:
            return stack, logical_id, resources[logical_id]
        parameter = stack.json.get("Parameters", {}).get(logical_id)
        if parameter is not None and stack is not self.platform:
            for resource in self.platform.json["Resources"].values():
                properties = resource.get("Properties", {})
                if resource["Type"] == "AWS::SSM::Parameter" and properties.get("Name") == parameter.get("Default"):
                    value = properties["Value"]
                    target = value.get("Ref") or value.get("Fn::GetAtt", [None])[0]
                    return self.resource(self.platform, str(target))
        raise SimulationError(f"{stack.name}: cannot follow reference {logical_id!r}")

    def render(self, stack: StackTemplate, value: Any) -> str:
        if isinstance(value, (str, int, float)):
            return str(value)
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self.render(stack, part) for part in parts)
        if isinstance(value, dict) and "Ref" in value:
            return self.rendered_ref(*self.resource(stack, value["Ref"]))
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            owner, found_id, resource = self.resource(stack, logical_id)
            if resource["Type"] == "AWS::CloudWatch::Alarm" or resource["Type"] == "AWS::CloudWatch::CompositeAlarm":
                return self.names[(owner.name, found_id)]
            if resource["Type"] == "AWS::SQS::Queue" and attribute == "QueueName":
                return DEAD_LETTER_QUEUE if self.is_dead_letter_queue(owner, found_id) else found_id
            return f"{found_id}.{attribute}"
        raise SimulationError(f"{stack.name}: cannot render {value!r}")

    def rendered_ref(self, stack: StackTemplate, logical_id: str, resource: dict[str, Any]) -> str:
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function":
            service = properties.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME")
            return str(service or logical_id)
        if resource["Type"] == "AWS::ApiGateway::Stage":
            return str(properties["StageName"])
        if resource["Type"] == "AWS::CloudWatch::Alarm" or resource["Type"] == "AWS::CloudWatch::CompositeAlarm":
            return self.names[(stack.name, logical_id)]
        return logical_id

    def is_dead_letter_queue(self, stack: StackTemplate, logical_id: str) -> bool:
        text = repr(stack.json.get("Resources", {}))
        return f"'deadLetterTargetArn': {{'Fn::GetAtt': ['{logical_id}', 'Arn']}}" in text

    def kind(self, stack: StackTemplate, properties: Mapping[str, Any]) -> str:
        kinds = set()
        for action in properties.get("AlarmActions", []):
            if isinstance(action, dict) and "Ref" in action:
                _, _, resource = self.resource(stack, action["Ref"])
                display = str(resource.get("Properties", {}).get("DisplayName", ""))
                if resource["Type"] == "AWS::SNS::Topic" and display.startswith(_TOPIC_PREFIX):
                    kinds.add(display.removeprefix(_TOPIC_PREFIX))
        if len(kinds) > 1:
            raise SimulationError(f"{stack.name}: an alarm notifies several topics: {sorted(kinds)}")
        return kinds.pop() if kinds else "-"


def _alarm_name(stack: StackTemplate, logical_id: str, properties: Mapping[str, Any], renderer: _Renderer) -> str:
    description = properties.get("AlarmDescription")
    match = _RUNBOOK.search(renderer.render(stack, description)) if description is not None else None
    if match:
        base = match.group(1).split("#")[0].rstrip("/").rsplit("/", 1)[-1].removesuffix(".md")
    else:
        # No runbook: an alarm nobody is paged by (a scaling trigger, a composite's part); its construct path.
        base = re.sub(r"[0-9A-F]{8}$", "", logical_id)
    return f"{base} [{stack.model}]" if stack.model else base


def _metric_stat(stack: StackTemplate, stat: Mapping[str, Any], renderer: _Renderer) -> MetricStat:
    metric = stat["Metric"]
    return MetricStat(
        namespace=metric["Namespace"],
        metric_name=metric["MetricName"],
        dimensions=tuple(
            (dimension["Name"], renderer.render(stack, dimension["Value"]))
            for dimension in metric.get("Dimensions", [])
        ),
        period_s=int(stat["Period"]),
        statistic=str(stat["Stat"]),
    )


def _metric_alarm(stack: StackTemplate, name: str, properties: Mapping[str, Any], renderer: _Renderer) -> MetricAlarm:
    if "Threshold" not in properties:
        raise SimulationError(f"{name}: an alarm without a static threshold (anomaly band) is not simulated")
    if "ExtendedStatistic" in properties and "Statistic" not in properties:
        properties = {**properties, "Statistic": properties["ExtendedStatistic"]}
    if "Metrics" in properties:
        queries = tuple(
            Query(
                id=entry["Id"],
                stat=_metric_stat(stack, entry["MetricStat"], renderer) if "MetricStat" in entry else None,
                expression=entry.get("Expression"),
                return_data=bool(entry.get("ReturnData", True)),
                period_s=int(entry["Period"]) if "Period" in entry else None,
            )
            for entry in properties["Metrics"]
        )
    else:
        stat = {
            "Metric": {key: properties[key] for key in ("Namespace", "MetricName", "Dimensions") if key in properties},
            "Period": properties["Period"],
            "Stat": properties["Statistic"],
        }
        queries = (Query("m1", _metric_stat(stack, stat, renderer), None, True),)
    return MetricAlarm(
        name=name,
        queries=queries,
        threshold=float(properties["Threshold"]),
        comparison=str(properties["ComparisonOperator"]),
        evaluation_periods=int(properties["EvaluationPeriods"]),
        datapoints_to_alarm=int(properties.get("DatapointsToAlarm", properties["EvaluationPeriods"])),
        treat_missing=str(properties.get("TreatMissingData", "missing")),
    )


def router_latency_targets(stacks: list[StackTemplate], models: tuple[str, ...]) -> dict[str, float]:
    """The router's LATENCY_TARGETS_MS, per model (the ``*`` entry, when there, for models it does not name)."""
    for stack in stacks:
        for resource in stack.json.get("Resources", {}).values():
            variables = resource.get("Properties", {}).get("Environment", {}).get("Variables", {})
            if (
                resource["Type"] == "AWS::Lambda::Function"
                and variables.get("POWERTOOLS_SERVICE_NAME") == ROUTER_SERVICE
            ):
                raw = variables.get(LATENCY_TARGETS_VARIABLE)
                targets = json.loads(raw) if isinstance(raw, str) else {}
                default = targets.get("*")
                chosen = {model: targets.get(model, default) for model in models}
                return {model: float(target) for model, target in chosen.items() if target is not None}
    raise SimulationError("no router function (POWERTOOLS_SERVICE_NAME inference-router) in the stage")


def stage_alarms(stacks: list[StackTemplate]) -> list[StageAlarm]:
    """Every CloudWatch alarm (metric and composite) in the stage's templates."""
    renderer = _Renderer(stacks)
    found: list[tuple[StackTemplate, str, Mapping[str, Any]]] = []
    for stack in stacks:
        for logical_id, resource in stack.json.get("Resources", {}).items():
            if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                properties = resource["Properties"]
                name = _alarm_name(stack, logical_id, properties, renderer)
                if name in renderer.names.values():
                    name = f"{name} ({logical_id})"
                renderer.names[(stack.name, logical_id)] = name
                found.append((stack, logical_id, properties))
    alarms: list[StageAlarm] = []
    for stack, logical_id, properties in found:
        name = renderer.names[(stack.name, logical_id)]
        alarm: Alarm
        if "AlarmRule" in properties:
            alarm = CompositeAlarm(name, renderer.render(stack, properties["AlarmRule"]))
        else:
            alarm = _metric_alarm(stack, name, properties, renderer)
        alarms.append(StageAlarm(alarm, renderer.kind(stack, properties)))
    return alarms
