"""The alarm simulator: every alarm of a synthesized stage evaluated as CloudWatch would, against simulated
metric series for named scenarios (``make alarms``, ``python -m ops.alarm_simulator``).

engine: the evaluation (statistics, periods, metric math, M of N, missing data, composite rules); series: a
minute of a metric and its statistics; template: the alarms read from the templates; traffic and emitters: the
metrics a stage emits for a scenario's minutes; scenarios: the named scenarios; report: the scenario x alarm table.
"""
