"""Alarm evaluation as CloudWatch does it, minute by minute over a simulated stretch of time.

A metric alarm is evaluated every minute. Its datapoint for a period is its statistic over that period's
minutes, or the value of the metric-math expression whose ``ReturnData`` is true; the periods end at the
evaluation (alarm history shows 5-minute datapoints stamped at any minute). The last ``EvaluationPeriods``
datapoints are compared with the threshold: ALARM when at least ``DatapointsToAlarm`` breach. Missing datapoints follow
TreatMissingData (CloudWatch's documented rules, with the evaluation range taken as exactly the evaluation
periods): when every datapoint is missing, notBreaching gives OK, breaching ALARM, ignore keeps the state and
missing gives INSUFFICIENT_DATA; when only some are, breaching and notBreaching fill them in, ignore and
missing count only the real ones. An alarm is first evaluated once its whole window lies in the simulated time.
A composite alarm is evaluated every minute on its children's states.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Final, Protocol

from ops.alarm_simulator.expressions import Series, evaluate
from ops.alarm_simulator.series import Samples, statistic

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
TREATMENTS: Final[tuple[str, ...]] = ("breaching", "notBreaching", "ignore", "missing")


class State(Enum):
    OK = "OK"
    ALARM = "ALARM"
    INSUFFICIENT_DATA = "INSUFFICIENT_DATA"


class SimulationError(ValueError):
    """An alarm the simulator cannot evaluate faithfully (unknown operator, treatment, period or reference)."""


class MetricSource(Protocol):
    """Simulated metrics: per minute, what was emitted under the metric and exactly these dimensions."""

    @property
    def minutes(self) -> int: ...

    def samples(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> Sequence[Samples | None]: ...


@dataclass(frozen=True, slots=True)
class MetricStat:
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    period_s: int
    statistic: str


@dataclass(frozen=True, slots=True)
class Query:
    """One entry of an alarm's ``Metrics`` (a plain alarm is one query, ``m1``, returning its data)."""

    id: str
    stat: MetricStat | None
    expression: str | None
    return_data: bool
    period_s: int | None = None  # an expression's own Period, if it states one


@dataclass(frozen=True, slots=True)
class MetricAlarm:
    name: str
    queries: tuple[Query, ...]
    threshold: float
    comparison: str
    evaluation_periods: int
    datapoints_to_alarm: int
    treat_missing: str

    @property
    def period_s(self) -> int:
        periods = {query.stat.period_s for query in self.queries if query.stat is not None}
        periods |= {query.period_s for query in self.queries if query.period_s is not None}
        if len(periods) != 1:
            raise SimulationError(f"{self.name}: its metrics need one period, not {sorted(periods)}")
        return periods.pop()


@dataclass(frozen=True, slots=True)
class CompositeAlarm:
    name: str
    rule: str  # ALARM("child") / OK(...) / INSUFFICIENT_DATA(...), TRUE, FALSE, AND, OR, NOT, parentheses


Alarm = MetricAlarm | CompositeAlarm


def datapoints(alarm: MetricAlarm, source: MetricSource) -> Series:
    """The alarm's datapoint for the period ending at each minute boundary ``end`` (index 0..minutes): CloudWatch
    evaluates every minute over periods that end at the evaluation, not at clock multiples of the period."""
    period_s = alarm.period_s
    if period_s % 60:
        raise SimulationError(f"{alarm.name}: period {period_s} s is not whole minutes")
    width = period_s // 60
    variables: dict[str, Series] = {}
    for query in alarm.queries:
        if query.stat is not None:
            stat = query.stat
            try:
                minutes = source.samples(stat.namespace, stat.metric_name, dict(stat.dimensions))
            except LookupError as error:
                raise SimulationError(f"{alarm.name}: {error}") from error
            variables[query.id] = window_statistics(minutes, width, stat.statistic)
    for query in alarm.queries:
        if query.expression is not None:
            variables[query.id] = evaluate(query.expression, variables, source.minutes + 1)
    returned = [query.id for query in alarm.queries if query.return_data]
    if len(returned) != 1:
        raise SimulationError(f"{alarm.name}: {len(returned)} metrics return data; an alarm needs exactly one")
    return variables[returned[0]]


def window_statistics(minutes: Sequence[Samples | None], width: int, name: str) -> Series:
    """``name`` over the ``width`` minutes before each minute boundary (None before a whole period has passed)."""
    points: Series = [None] * (len(minutes) + 1)
    if name in ("Sum", "SampleCount", "Average"):
        # Running totals: a day of 6-hour windows would otherwise re-read 360 minutes 1,440 times.
        totals, counts, present = [0.0], [0.0], [0]
        for minute in minutes:
            pairs = minute.pairs if minute is not None else ()
            totals.append(totals[-1] + sum(value * count for value, count in pairs))
            counts.append(counts[-1] + sum(count for _, count in pairs))
            present.append(present[-1] + (1 if pairs else 0))
        for end in range(width, len(minutes) + 1):
            start = end - width
            if present[end] == present[start]:
                continue
            total, count = totals[end] - totals[start], counts[end] - counts[start]
            points[end] = {"Sum": total, "SampleCount": count}.get(name, total / count if count else None)
        return points
    for end in range(width, len(minutes) + 1):
        points[end] = statistic(minutes[end - width : end], name)
    return points


def judge(window: Sequence[float | None], alarm: MetricAlarm, current: State) -> State:
    """The state one evaluation gives for the last ``EvaluationPeriods`` datapoints."""
    compare = _COMPARE.get(alarm.comparison)
    if compare is None:
        raise SimulationError(f"{alarm.name}: comparison {alarm.comparison} is not simulated")
    if alarm.treat_missing not in TREATMENTS:
        raise SimulationError(f"{alarm.name}: TreatMissingData {alarm.treat_missing!r} is not one of {TREATMENTS}")
    real = [value for value in window if value is not None]
    if not real:
        return {
            "notBreaching": State.OK,
            "breaching": State.ALARM,
            "ignore": current,
            "missing": State.INSUFFICIENT_DATA,
        }[alarm.treat_missing]
    breaching = sum(1 for value in real if compare(value, alarm.threshold))
    if alarm.treat_missing == "breaching":
        breaching += len(window) - len(real)
    return State.ALARM if breaching >= alarm.datapoints_to_alarm else State.OK


def metric_alarm_states(alarm: MetricAlarm, source: MetricSource) -> list[State]:
    """The alarm's state during each simulated minute (evaluated as each minute closes)."""
    points = datapoints(alarm, source)
    width = alarm.period_s // 60
    states = [State.INSUFFICIENT_DATA] * source.minutes
    state = State.INSUFFICIENT_DATA
    for minute in range(alarm.evaluation_periods * width - 1, source.minutes):
        end = minute + 1
        window = [points[end - back * width] for back in reversed(range(alarm.evaluation_periods))]
        state = judge(window, alarm, state)
        states[minute] = state
    return states


def evaluate_alarms(alarms: Sequence[Alarm], source: MetricSource) -> dict[str, list[State]]:
    """Every alarm's state per minute, by name (composite alarms after the alarms they read)."""
    by_name = {alarm.name: alarm for alarm in alarms}
    if len(by_name) != len(alarms):
        raise SimulationError("two alarms share a name")
    states: dict[str, list[State]] = {}

    def resolve(name: str, path: tuple[str, ...]) -> list[State]:
        if name in path:
            raise SimulationError(f"composite alarms refer to each other in a loop: {' -> '.join((*path, name))}")
        if name not in states:
            alarm = by_name.get(name)
            if alarm is None:
                raise SimulationError(f"{path[-1] if path else '?'} reads alarm {name!r}, which is not in the stage")
            if isinstance(alarm, MetricAlarm):
                states[name] = metric_alarm_states(alarm, source)
            else:
                rule = parse_rule(alarm.rule)
                children = {child: resolve(child, (*path, name)) for child in rule.children()}
                states[name] = [
                    State.ALARM if rule.holds({child: s[minute] for child, s in children.items()}) else State.OK
                    for minute in range(source.minutes)
                ]
        return states[name]

    for alarm in alarms:
        resolve(alarm.name, ())
    return states


_RULE_TOKEN: Final[re.Pattern[str]] = re.compile(
    r'\s*(ALARM|OK|INSUFFICIENT_DATA|TRUE|FALSE|AND|OR|NOT|\(|\)|"[^"]*"|[^\s()"]+)'
)


@dataclass(frozen=True, slots=True)
class Rule:
    """A parsed AlarmRule: ``op`` is STATE (``state`` of ``child``), CONST, NOT, AND or OR."""

    op: str
    operands: tuple[Rule, ...] = ()
    child: str = ""
    state: State = State.ALARM
    constant: bool = False

    def children(self) -> set[str]:
        own = {self.child} if self.op == "STATE" else set()
        return own.union(*(operand.children() for operand in self.operands))

    def holds(self, states: Mapping[str, State]) -> bool:
        if self.op == "STATE":
            return states[self.child] is self.state
        if self.op == "CONST":
            return self.constant
        if self.op == "NOT":
            return not self.operands[0].holds(states)
        if self.op == "AND":
            return all(operand.holds(states) for operand in self.operands)
        return any(operand.holds(states) for operand in self.operands)


def parse_rule(text: str) -> Rule:
    tokens: list[str] = []
    at = 0
    while text[at:].strip():
        match = _RULE_TOKEN.match(text, at)
        if match is None:
            raise SimulationError(f"cannot read the alarm rule {text!r} at {text[at:]!r}")
        tokens.append(match.group(1))
        at = match.end()
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal position
        symbol = peek()
        if symbol is None or (expected is not None and symbol != expected):
            raise SimulationError(f"alarm rule {text!r}: expected {expected or 'more'}, found {symbol!r}")
        position += 1
        return symbol

    def either() -> Rule:
        operands = [both()]
        while peek() == "OR":
            take()
            operands.append(both())
        return operands[0] if len(operands) == 1 else Rule("OR", tuple(operands))

    def both() -> Rule:
        operands = [negation()]
        while peek() == "AND":
            take()
            operands.append(negation())
        return operands[0] if len(operands) == 1 else Rule("AND", tuple(operands))

    def negation() -> Rule:
        if peek() == "NOT":
            take()
            return Rule("NOT", (negation(),))
        return atom()

    def atom() -> Rule:
        symbol = take()
        if symbol == "(":
            rule = either()
            take(")")
            return rule
        if symbol in ("TRUE", "FALSE"):
            return Rule("CONST", constant=symbol == "TRUE")
        if symbol in ("ALARM", "OK", "INSUFFICIENT_DATA"):
            take("(")
            child = take().strip('"')
            take(")")
            return Rule("STATE", child=child, state=State[symbol])
        raise SimulationError(f"alarm rule {text!r}: unexpected {symbol!r}")

    rule = either()
    if position != len(tokens):
        raise SimulationError(f"alarm rule {text!r}: unexpected {tokens[position]!r}")
    return rule


def fired(states: Sequence[State]) -> bool:
    return State.ALARM in states
