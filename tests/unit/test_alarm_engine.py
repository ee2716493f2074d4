"""The alarm simulator's engine against hand-computed cases: statistics, periods that end at each evaluation,
M of N, each missing-data treatment, metric math and composite rules, and a loud failure on what it does not
simulate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from ops.alarm_simulator.engine import (
    CompositeAlarm,
    MetricAlarm,
    MetricStat,
    Query,
    SimulationError,
    State,
    datapoints,
    evaluate_alarms,
    judge,
    metric_alarm_states,
    parse_rule,
)
from ops.alarm_simulator.expressions import UnsupportedExpressionError, evaluate
from ops.alarm_simulator.series import Samples, UnsupportedStatisticError, statistic


class Source:
    """Fixed minutes per metric name (dimensions ignored)."""

    def __init__(self, **series: Sequence[Samples | None]) -> None:
        self.series = series
        self.minutes = len(next(iter(series.values())))

    def samples(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> Sequence[Samples | None]:
        return self.series[metric_name]


def counts(*values: float | None) -> list[Samples | None]:
    return [None if value is None else Samples.value(value) for value in values]


def alarm(
    metric: str = "m",
    *,
    stat: str = "Sum",
    period_s: int = 60,
    threshold: float = 0,
    comparison: str = "GreaterThanThreshold",
    n: int = 1,
    m: int = 1,
    missing: str = "notBreaching",
    name: str = "a",
) -> MetricAlarm:
    query = Query("m1", MetricStat("NS", metric, (), period_s, stat), None, True)
    return MetricAlarm(name, (query,), threshold, comparison, n, m, missing)


def test_statistics_weigh_values_by_their_counts() -> None:
    minutes = [Samples.events(3, 10), Samples.histogram([(5.0, 1), (100.0, 1)])]
    assert statistic(minutes, "Sum") == 108
    assert statistic(minutes, "SampleCount") == 12
    assert statistic(minutes, "Average") == 9
    assert statistic(minutes, "Minimum") == 0
    assert statistic(minutes, "Maximum") == 100
    assert statistic([None, None], "Sum") is None


def test_a_percentile_is_the_smallest_value_with_that_share_at_or_below_it() -> None:
    minute = Samples.histogram([(10.0, 98), (50.0, 1), (900.0, 1)])
    assert statistic([minute], "p50") == 10
    assert statistic([minute], "p99") == 50
    assert statistic([minute], "p99.9") == 900


def test_an_unknown_statistic_fails_loudly() -> None:
    with pytest.raises(UnsupportedStatisticError, match="TM90"):
        statistic([Samples.value(1)], "TM90")


def test_a_period_ends_at_each_evaluation_not_at_clock_multiples() -> None:
    # 5-minute sums at every minute boundary from the fifth on.
    source = Source(m=counts(1, 0, 0, 0, 0, 2, 0))
    assert datapoints(alarm(period_s=300), source) == [None, None, None, None, None, 1, 2, 2]


def test_an_average_over_a_period_is_over_the_samples_not_the_minutes() -> None:
    source = Source(m=[Samples.events(1, 1), Samples.events(0, 99)])
    assert datapoints(alarm(stat="Average", period_s=120), source)[2] == pytest.approx(0.01)


def test_m_of_n_alarms_only_when_enough_datapoints_breach() -> None:
    # 2 of 3, minute by minute: (1,0,1) ALARM, (0,1,1) ALARM, (1,1,0) ALARM, (1,0,0) OK.
    states = metric_alarm_states(alarm(n=3, m=2), Source(m=counts(1, 0, 1, 1, 0, 0)))
    assert states == [State.INSUFFICIENT_DATA] * 2 + [State.ALARM] * 3 + [State.OK]


def test_an_alarm_is_first_evaluated_once_its_window_is_whole() -> None:
    states = metric_alarm_states(alarm(n=2, m=2, period_s=120), Source(m=counts(1, 1, 1, 1)))
    assert states == [State.INSUFFICIENT_DATA] * 3 + [State.ALARM]


@pytest.mark.parametrize(
    ("missing", "current", "expected"),
    [
        ("notBreaching", State.ALARM, State.OK),
        ("breaching", State.OK, State.ALARM),
        ("ignore", State.ALARM, State.ALARM),
        ("ignore", State.OK, State.OK),
        ("missing", State.ALARM, State.INSUFFICIENT_DATA),
    ],
)
def test_all_missing_follows_the_treatment(missing: str, current: State, expected: State) -> None:
    assert judge([None, None, None], alarm(n=3, m=2, missing=missing), current) is expected


@pytest.mark.parametrize(
    ("missing", "expected"),
    [("breaching", State.ALARM), ("notBreaching", State.OK), ("ignore", State.OK), ("missing", State.OK)],
)
def test_some_missing_are_filled_only_by_breaching_and_not_breaching(missing: str, expected: State) -> None:
    # One real breaching point and two missing, 2 of 3: only "breaching" counts the missing ones against it.
    assert judge([5.0, None, None], alarm(n=3, m=2, missing=missing), State.OK) is expected


def test_less_than_and_or_equal_comparisons() -> None:
    assert judge([0.2], alarm(comparison="LessThanThreshold", threshold=0.3), State.OK) is State.ALARM
    assert judge([0.3], alarm(comparison="LessThanThreshold", threshold=0.3), State.OK) is State.OK
    assert judge([0.3], alarm(comparison="GreaterThanOrEqualToThreshold", threshold=0.3), State.OK) is State.ALARM
    assert judge([0.3], alarm(comparison="LessThanOrEqualToThreshold", threshold=0.3), State.OK) is State.ALARM


def test_an_unknown_comparison_or_treatment_fails_loudly() -> None:
    with pytest.raises(SimulationError, match="LessThanLowerOrGreaterThanUpperThreshold"):
        judge([1.0], alarm(comparison="LessThanLowerOrGreaterThanUpperThreshold"), State.OK)
    with pytest.raises(SimulationError, match="sometimes"):
        judge([1.0], alarm(missing="sometimes"), State.OK)


def test_a_period_of_seconds_fails_loudly() -> None:
    with pytest.raises(SimulationError, match="30 s"):
        datapoints(alarm(period_s=30), Source(m=counts(1)))


def test_metric_math_ratio_with_a_volume_floor() -> None:
    bad = Query("bad", MetricStat("NS", "bad", (), 60, "Sum"), None, False)
    total = Query("total", MetricStat("NS", "total", (), 60, "Sum"), None, False)
    ratio = Query("e", None, "IF(total >= 10, bad / total, 0)", True)
    math_alarm = MetricAlarm("r", (bad, total, ratio), 0.1, "GreaterThanThreshold", 1, 1, "notBreaching")
    source = Source(bad=counts(1, 5, 0, None), total=counts(2, 20, 0, None))
    # 1/2 is under the floor; 5/20 breaches; 0/0 is 0 under the floor; a missing minute stays missing.
    assert datapoints(math_alarm, source)[1:] == [0, 0.25, 0, None]
    assert metric_alarm_states(math_alarm, source) == [State.OK, State.ALARM, State.OK, State.OK]


def test_expressions_propagate_missing_points_and_drop_divisions_by_zero() -> None:
    variables = {"a": [1.0, None, 4.0], "b": [2.0, 2.0, 0.0]}
    assert evaluate("a / b", variables, 3) == [0.5, None, None]
    assert evaluate("FILL(a, 0) + -b * 2", variables, 3) == [-3.0, -4.0, 4.0]
    assert evaluate("(a > 1 AND b > 1) || a == 1", variables, 3) == [1.0, None, 0.0]
    assert evaluate("SUM([a, b])", variables, 3) == [3.0, 2.0, 4.0]
    assert evaluate("MAX([a, b])", variables, 3) == [2.0, 2.0, 4.0]
    assert evaluate("IF(b, a)", variables, 3) == [1.0, None, None]


@pytest.mark.parametrize("expression", ["ANOMALY_DETECTION_BAND(a)", "RATE(a)", "MAX(a)", "c + 1", "a +", "a ? b"])
def test_unsupported_expressions_fail_loudly(expression: str) -> None:
    with pytest.raises(UnsupportedExpressionError):
        evaluate(expression, {"a": [1.0], "b": [1.0]}, 1)


def test_composite_rules_read_their_childrens_states_each_minute() -> None:
    fast = alarm("fast", name="fast")
    slow = alarm("slow", name="slow", n=2, m=2)
    both = CompositeAlarm("both", '(ALARM("fast") AND ALARM("slow")) OR (FALSE AND NOT OK("slow"))')
    source = Source(fast=counts(1, 1, 0), slow=counts(1, 1, 1))
    states = evaluate_alarms([both, fast, slow], source)
    assert states["slow"] == [State.INSUFFICIENT_DATA, State.ALARM, State.ALARM]
    assert states["both"] == [State.OK, State.ALARM, State.OK]


def test_rule_precedence_not_then_and_then_or() -> None:
    rule = parse_rule('NOT ALARM("a") AND ALARM("b") OR ALARM("c")')
    assert rule.holds({"a": State.OK, "b": State.ALARM, "c": State.OK})
    assert not rule.holds({"a": State.ALARM, "b": State.ALARM, "c": State.OK})
    assert rule.holds({"a": State.ALARM, "b": State.OK, "c": State.ALARM})


def test_a_composite_reading_an_unknown_alarm_or_itself_fails_loudly() -> None:
    source = Source(m=counts(1))
    with pytest.raises(SimulationError, match="ghost"):
        evaluate_alarms([CompositeAlarm("c", 'ALARM("ghost")')], source)
    with pytest.raises(SimulationError, match="loop"):
        evaluate_alarms([CompositeAlarm("c", 'ALARM("d")'), CompositeAlarm("d", 'ALARM("c")')], source)
    with pytest.raises(SimulationError, match="unexpected 'XOR'"):
        parse_rule('ALARM("a") XOR ALARM("b")')
    with pytest.raises(SimulationError, match="cannot read"):
        parse_rule('ALARM("a") AND "unclosed')
