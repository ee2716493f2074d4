"""The alarms on-call receives, by name: what each reads and how (the fixed half of an alarm).

The names here are the only list of alarms: the stage config requires a topic and window for each, the
constructs create each, and each has a runbook at ``docs/runbooks/<name with dashes>.md``. Spillover, errors,
throttles and 5XX are emitted only when something happens: silence is good news. Provisioned-concurrency
utilization is not emitted without traffic, and idle PC is exactly the waste its ticket is about, so silence
counts as breaching. The SLO burn-rate pages are composite alarms configured under ``slo``
(:data:`BURN_RATE_ALARMS`).
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
    # Capacity signals for the planner, not outages: with provisioned concurrency of 2, any load above 2
    # concurrent requests spills over, and those callers only pay a cold start.
    "router_pc_spillover": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Capacity ticket: more than {threshold:.0%} of the invocations of {subject} ran outside its provisioned "
        "concurrency (ProvisionedConcurrencySpilloverInvocations / Invocations per {period}, in {periods}). "
        "Those callers paid a cold start; consider more provisioned concurrency.",
    ),
    # The SageMaker serverless PC metrics document Average, Maximum and Minimum only; each 1-minute datapoint is
    # that minute's count, and both metrics are emitted for the same minutes, so the ratio of their Averages
    # over a period is the ratio of their totals.
    "serverless_pc_spillover": AlarmSpec(
        "Average",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Capacity ticket: more than {threshold:.0%} of the invocations of {subject} ran outside its provisioned "
        "concurrency (spillover / (provisioned + spillover invocations) per {period}, in {periods}). Those "
        "callers paid a cold start; consider more provisioned concurrency.",
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
    "serverless_5xx_errors": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Ticket: {subject} answered more than {threshold:g} 5XX errors per {period}, in {periods}: the model "
        "container or SageMaker is failing. Callers hurt by it page through the availability SLO burn or "
        "degraded answers; this says where to look.",
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
    "router_duration_near_timeout": AlarmSpec(
        "p99",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Ticket: the p99 duration of {subject} was above {threshold:.0%} of its timeout per {period}, in "
        "{periods}: a little slower and those requests time out (502).",
    ),
    # The router counts BreakerTransitions per endpoint and new state. While traffic flows, a circuit that stays
    # open re-opens after each failed probe (every cooldown, 10 s by default), so opening in every period of the
    # window is being open for the window; one that recovered closes and stops opening.
    "circuit_open": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: the router's circuit to {subject} opened more than {threshold:g} times per {period}, in "
        "{periods}: the endpoint has been failing for minutes and callers get fallbacks or 503s.",
    ),
    "degraded_answers_sustained": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Page: more than {threshold:.0%} of the answers for {subject} were degraded (a static or last-good "
        "fallback, or spilled to async: DegradedRequests / Requests per {period}, in {periods}). Callers get "
        "stale or default answers while the endpoint is down.",
    ),
    # The stage's total, from the router's and the sweeper's service-only rollups (infra/constructs/cost_metrics.py).
    # A steady serverless request costs about $0.006 per 1,000 at the table's prices, so the default of $0.10 is
    # capacity paid for and barely used: an ml.m5.large up for fewer than about 1,150 predictions an hour.
    "cost_per_1000_predictions": AlarmSpec(
        "Sum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Cost ticket: {subject} cost more than {threshold:g} USD per 1,000 predictions (1000 x the router's and the "
        "sweeper's CostUsd / Requests per {period}, in {periods}): capacity is paid for and barely used, e.g. an "
        "async instance kept up for a trickle of requests. An hour without requests has no datapoint.",
    ),
    # The drift job (functions/handlers/drift/) publishes MaxFeaturePsi once per model and run; a day without
    # captures publishes nothing, which is no evidence of drift.
    "feature_drift": AlarmSpec(
        "Maximum",
        "GREATER_THAN_THRESHOLD",
        "NOT_BREACHING",
        "Ticket: the inputs {subject} receives drifted from its baseline: the drift job's largest feature PSI "
        "(MaxFeaturePsi) was above {threshold:g} per {period}, in {periods}. The model may be answering for "
        "data unlike what it was trained on; the run's report in the capture bucket names the features.",
    ),
}
ALARM_NAMES: Final[tuple[str, ...]] = tuple(ALARM_SPECS)
# Alarms whose threshold is a fraction: of provisioned concurrency, of invocations, of the timeout, of answers.
SHARE_ALARMS: Final[tuple[str, ...]] = (
    "router_pc_low_utilization",
    "serverless_pc_low_utilization",
    "router_pc_spillover",
    "serverless_pc_spillover",
    "router_duration_near_timeout",
    "degraded_answers_sustained",
)

# The per-model SLO pages (infra/constructs/slo.py), configured under the stage's ``slo``: each is a composite
# alarm over the burn-rate window pairs. Formatted with subject, objective and pairs.
BURN_RATE_ALARMS: Final[dict[str, str]] = {
    "slo_availability_burn": "Page: {subject} is spending its availability error budget (target {objective}) too "
    "fast: 5XX answers / answers exceeded {pairs}.",
    "slo_latency_burn": "Page: {subject} is spending its latency error budget (target {objective}) too fast: "
    "answers slower than its target / answers exceeded {pairs}.",
}
# Every alarm on-call can receive, each with a runbook at docs/runbooks/<name with dashes>.md.
ON_CALL_ALARM_NAMES: Final[tuple[str, ...]] = (*ALARM_NAMES, *BURN_RATE_ALARMS)
