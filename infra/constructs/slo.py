"""ModelSlo: one model's availability and latency SLOs and the multi-window burn-rate pages on them.

Both are request-based CloudWatch SLOs (Application Signals) on the router's per-model metrics: good =
Requests - ServerErrors (availability) or Requests - SlowRequests (latency), total = Requests, dimensions
service and model. The pages do not read the SLOs' own burn-rate metrics: each window is a metric-math alarm on
the same ratio (bad / total over the window), so a page depends only on the router's metrics and can be
evaluated offline, and a composite alarm pages when both windows of any pair burn too fast. A long window
with fewer than ``min_requests`` answers reads 0, so a single error in a quiet hour never pages.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_applicationsignals as applicationsignals
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from functions.config.telemetry import (
    DEGRADED_REQUESTS_METRIC,
    METRICS_NAMESPACE,
    MODEL_DIMENSION,
    REQUESTS_METRIC,
    ROUTER_SERVICE,
    SERVER_ERRORS_METRIC,
    SERVICE_DIMENSION,
    SLOW_REQUESTS_METRIC,
)
from infra.config.alarm_specs import BURN_RATE_ALARMS
from infra.config.types import BurnRateWindow, SloConfig, SloTargets
from infra.constructs.on_call_alarm import OnCallAlarms, duration_text, notify, pascal


def router_model_metric(metric_name: str, model: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    """A router metric of one model, as the router emits it under its (service, model) dimension set."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={SERVICE_DIMENSION: ROUTER_SERVICE, MODEL_DIMENSION: model},
        statistic=statistic,
        period=period,
    )


def slo_name_prefix(stage: str) -> str:
    return f"{ROUTER_SERVICE}-{stage}"


def _query(query_id: str, metric_name: str, model: str, *, returned: bool) -> dict[str, object]:
    return {
        "id": query_id,
        "metricStat": {
            "metric": {
                "namespace": METRICS_NAMESPACE,
                "metricName": metric_name,
                "dimensions": [
                    {"name": SERVICE_DIMENSION, "value": ROUTER_SERVICE},
                    {"name": MODEL_DIMENSION, "value": model},
                ],
            },
            "period": 60,
            "stat": "Sum",
        },
        "returnData": returned,
    }


class ModelSlo(Construct):
    """Props (keyword-only):
        model: the model's name (the router's ``model`` dimension).
        targets: its objectives; slo: the stage's SLO settings (period, burn-rate pairs, volume floor).
        slo_name_prefix: unique per stage and region (SLO names are unique per account and region).
        on_call: the stack's on-call alarms: runbook links, the page topic, and the model's
            degraded_answers_sustained page (the share of its answers that were degraded).

    Attributes: ``slos`` and ``pages`` (each by objective: "availability", "latency").
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model: str,
        targets: SloTargets,
        slo: SloConfig,
        slo_name_prefix: str,
        on_call: OnCallAlarms,
    ) -> None:
        super().__init__(scope, construct_id)
        self.slos: dict[str, applicationsignals.CfnServiceLevelObjective] = {}
        self.pages: dict[str, cloudwatch.CompositeAlarm] = {}
        self._windows: dict[str, cloudwatch.Alarm] = {}
        objectives = {
            "availability": (SERVER_ERRORS_METRIC, targets.availability_target, "5XX answers"),
            "latency": (SLOW_REQUESTS_METRIC, targets.latency_target, f"answers over {targets.latency_target_ms} ms"),
        }
        windows = sorted({s for pair in slo.burn_rate_pages for s in (pair.long_window_s, pair.short_window_s)})
        for objective, (bad_metric, target, bad_text) in objectives.items():
            self.slos[objective] = applicationsignals.CfnServiceLevelObjective(
                self,
                f"{pascal(objective)}Slo",
                name=f"{slo_name_prefix}-{model}-{objective}",
                description=f"{model}: share of answers that are not {bad_text}, target {target:.3%}",
                request_based_sli={
                    "requestBasedSliMetric": {
                        "totalRequestCountMetric": [_query("total", REQUESTS_METRIC, model, returned=True)],
                        "monitoredRequestCountMetric": {
                            "goodCountMetric": [
                                _query("total", REQUESTS_METRIC, model, returned=False),
                                _query("bad", bad_metric, model, returned=False),
                                {"id": "good", "expression": "total - bad", "returnData": True},
                            ]
                        },
                    }
                },
                goal={
                    "attainmentGoal": round(target * 100, 5),
                    "interval": {"rollingInterval": {"duration": slo.rolling_days, "durationUnit": "DAY"}},
                },
                burn_rate_configurations=[{"lookBackWindowMinutes": seconds // 60} for seconds in windows],
            )
            alarm_name = f"slo_{objective}_burn"
            rules = [
                cloudwatch.AlarmRule.all_of(
                    *(
                        cloudwatch.AlarmRule.from_alarm(
                            self._window_alarm(
                                objective=objective,
                                model=model,
                                bad_metric=bad_metric,
                                target=target,
                                pair=pair,
                                long=long,
                                min_requests=slo.min_requests,
                            ),
                            cloudwatch.AlarmState.ALARM,
                        )
                        for long in (True, False)
                    )
                )
                for pair in slo.burn_rate_pages
            ]
            pairs = " or ".join(
                f"{pair.burn_rate:g}x the budget over both {duration_text(pair.long_window_s)} and "
                f"{duration_text(pair.short_window_s)}"
                for pair in slo.burn_rate_pages
            )
            meaning = BURN_RATE_ALARMS[alarm_name].format(
                subject=f"model {model}", objective=f"{target:.3%}", pairs=pairs
            )
            page = cloudwatch.CompositeAlarm(
                self,
                f"{pascal(alarm_name)}",
                alarm_rule=cloudwatch.AlarmRule.any_of(*rules),
                alarm_description=f"{meaning} Runbook: {on_call.runbook(alarm_name)}",
            )
            notify(page, on_call.topic("page"))
            self.pages[objective] = page
        on_call.add(
            self,
            "degraded_answers_sustained",
            "",
            f"model {model}",
            lambda statistic, period: cloudwatch.MathExpression(
                expression="degraded / total",
                using_metrics={
                    "degraded": router_model_metric(DEGRADED_REQUESTS_METRIC, model, statistic, period),
                    "total": router_model_metric(REQUESTS_METRIC, model, statistic, period),
                },
                period=period,
                label="share of answers degraded",
            ),
        )

    def _window_alarm(
        self,
        *,
        objective: str,
        model: str,
        bad_metric: str,
        target: float,
        pair: BurnRateWindow,
        long: bool,
        min_requests: int,
    ) -> cloudwatch.Alarm:
        window_s = pair.long_window_s if long else pair.short_window_s
        construct_id = f"{pascal(objective)}Burn{'Long' if long else 'Short'}{window_s}s"
        if construct_id in self._windows:  # two pairs may share a window
            return self._windows[construct_id]
        period = Duration.seconds(window_s)
        expression = f"IF(total >= {min_requests}, bad / total, 0)" if long else "bad / total"
        label = f"{objective} error ratio over {duration_text(window_s)}"
        threshold = pair.burn_rate * (1 - target)
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            alarm_description=f"Part of the {objective} burn-rate page of model {model}: its {label} is above "
            f"{threshold:.4g} ({pair.burn_rate:g}x the error budget). Notifies nobody by itself.",
            metric=cloudwatch.MathExpression(
                expression=expression,
                using_metrics={
                    "bad": router_model_metric(bad_metric, model, "Sum", period),
                    "total": router_model_metric(REQUESTS_METRIC, model, "Sum", period),
                },
                period=period,
                label=label,
            ),
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            datapoints_to_alarm=1,
            # No answers, no burn: the router emits these metrics only when it answers.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._windows[construct_id] = alarm
        return alarm
