"""The alarms on-call receives, by name: what each reads and how (the fixed half of an alarm).

The names here are the only list of alarms: the stage config requires a topic and window for each, the
constructs create each, and each has a runbook at ``docs/runbooks/<name with dashes>.md``. Spillover, errors,
throttles and 5XX are emitted only when something happens: silence is good news. Provisioned-concurrency
utilization is not emitted without traffic, and idle PC is exactly the waste its ticket is about, so silence
counts as breaching.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Comparison = Literal["GREATER_THAN_THRESHOLD", "LESS_THAN_THRESHOLD"]
Missing = Literal["BREACHING", "NOT_BREACHING"]


@dataclass(frozen=True, slots=True)
class AlarmSpec:
    """The fixed half of an alarm: which metric, read how, compared how, and what silence means."""

    statistic: str
    comparison: Comparison  # a member name of CDK's cloudwatch.ComparisonOperator
    missing_data: Missing  # a member name of CDK's cloudwatch.TreatMissingData
    meaning: str  # formatted with subject, threshold, window, periods


ALARM_SPECS: Final[dict[str, AlarmSpec]] = {
    "router_pc_low_utilization": AlarmSpec(
        "Maximum",
        "LESS_THAN_THRESHOLD",
        "BREACHING",
        "Cost ticket: even at its busiest, {subject} used under {threshold:.0%} of its provisioned concurrency "
        "over {window} (no traffic counts as idle). Warm environments are paid for and unused.",
    ),
    "serverless_pc_low_utilization": AlarmSpec(
        "Maximum",
        "LESS_THAN_THRESHOLD",
        "BREACHING",
        "Cost ticket: even at its busiest, {subject} used under {threshold:.0%} of its provisioned concurrency "
        "over {window} (no traffic counts as idle). Provisioned capacity is paid for and unused.",
    ),
    "router_pc_spillover": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: requests to {subject} overflowed its provisioned concurrency into cold on-demand environments "
        "(more than {threshold:g} per {period}, in {periods}). Latency is rising for callers.",
    ),
    "serverless_pc_spillover": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: invocations of {subject} overflowed its provisioned concurrency into cold starts "
        "(more than {threshold:g} per {period}, in {periods}). Callers may see 503s and timeouts.",
    ),
    "router_errors": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: {subject} failed (unhandled exception, timeout or crash) more than {threshold:g} times per "
        "{period}, in {periods}. Callers get 5XX from API Gateway instead of an answer.",
    ),
    "router_unhandled_errors": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: {subject} answered more than {threshold:g} requests per {period} with a 500 for an exception no "
        "rule handles, in {periods}: a bug. Lambda does not count these as errors (the router answered).",
    ),
    "router_throttles": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: Lambda throttled {subject} (reserved or account concurrency exhausted) more than {threshold:g} "
        "times per {period}, in {periods}. Those requests were refused.",
    ),
    "api_5xx_rate": AlarmSpec(
        "Average",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: more than {threshold:.0%} of requests to {subject} answered 5XX per {period}, in {periods} "
        "(502 model or router failure, 503 endpoint unavailable, 504 deadline passed).",
    ),
    "serverless_5xx_errors": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: {subject} answered more than {threshold:g} 5XX errors per {period}, in {periods}: the model "
        "container or SageMaker is failing.",
    ),
    "dlq_not_empty": AlarmSpec(
        "Maximum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: {subject} holds more than {threshold:g} messages: async results that failed processing "
        "repeatedly or that SNS could not deliver. Those jobs never complete for their callers.",
    ),
    "async_forged_notifications": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page (security): {subject} ignored more than {threshold:g} async notifications per {period}, in "
        "{periods}, whose output or failure location was not the one recorded for their job: someone with "
        "sns:Publish or sqs:SendMessage rights is forging results, or an endpoint writes where it should not.",
    ),
    "async_backlog_without_capacity": AlarmSpec(
        "Minimum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: {subject} has had queued requests and no running instance for {window}: it did not scale up "
        "from zero, so async jobs are stuck.",
    ),
    "async_oldest_open_job_age": AlarmSpec(
        "Maximum",
        "GREATER_THAN_THRESHOLD",
        "BREACHING",
        "Page: {subject} has been unfinished for more than {threshold:g} s, in {periods} of {period}, or the "
        "sweeper stopped reporting (silence counts): a caller is waiting for a job nobody will settle.",
    ),
    "async_oldest_request_age": AlarmSpec(
        "Maximum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: the oldest queued request on {subject} has waited more than {threshold:g} s, in {periods} of "
        "{period}: the endpoint is not keeping up.",
    ),
}
ALARM_NAMES: Final[tuple[str, ...]] = tuple(ALARM_SPECS)
