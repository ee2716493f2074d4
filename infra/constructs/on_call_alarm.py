"""One on-call alarm, built the same way in the platform stack and in every model stack.

Each alarm's statistic, comparison and missing-data treatment are fixed in :mod:`infra.config.alarm_specs`;
its threshold, window and topic come from the stage config. Its description says what it means and links
its runbook, ``<runbook_base_url>/<alarm>.md``; it notifies its topic on ALARM and on OK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config.alarm_specs import ALARM_SPECS
from infra.config.types import AlarmConfig

MetricFactory = Callable[[str, Duration], cloudwatch.IMetric]


def runbook_slug(alarm_name: str) -> str:
    return alarm_name.replace("_", "-")


def pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").replace(".", "_").split("_"))


def duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


class OnCallAlarms:
    """Makes alarms from the stage's alarm configs and sends each to its topic.

    Props: configs (alarm name -> AlarmConfig), runbook_base_url, topic (topic name -> the topic, asked only for
    the topics the alarms made use).
    Attribute: ``alarms`` (alarm name -> the alarms made under that name).
    """

    def __init__(
        self, *, configs: Mapping[str, AlarmConfig], runbook_base_url: str, topic: Callable[[str], sns.ITopic]
    ) -> None:
        self._configs = configs
        self._runbook_base_url = runbook_base_url.rstrip("/")
        self._topic = topic
        self.alarms: dict[str, list[cloudwatch.Alarm]] = {}

    def runbook(self, alarm_name: str) -> str:
        return f"{self._runbook_base_url}/{runbook_slug(alarm_name)}.md"

    def topic(self, topic_name: str) -> sns.ITopic:
        return self._topic(topic_name)

    def add(
        self,
        scope: Construct,
        alarm_name: str,
        qualifier: str,
        subject: str,
        metric: MetricFactory,
        *,
        threshold_unit: float = 1.0,
    ) -> cloudwatch.Alarm:
        """The alarm ``alarm_name`` on ``metric``, with construct id ``<AlarmName><Qualifier>`` under ``scope``.

        ``threshold_unit``: what a threshold of 1 means in the metric's unit (the function's timeout in ms for
        a threshold that is a fraction of it).
        """
        spec = ALARM_SPECS[alarm_name]
        config = self._configs[alarm_name]
        period = Duration.seconds(config.period_s)
        meaning = spec.meaning.format(
            subject=subject,
            threshold=config.threshold,
            window=duration_text(config.period_s * config.evaluation_periods),
            period=duration_text(config.period_s),
            periods=f"{config.datapoints_to_alarm} of {config.evaluation_periods} periods",
        )
        alarm = cloudwatch.Alarm(
            scope,
            f"{pascal(alarm_name)}{pascal(qualifier)}",
            alarm_description=f"{meaning} Runbook: {self.runbook(alarm_name)}",
            metric=metric(spec.statistic, period),
            threshold=config.threshold * threshold_unit,
            comparison_operator=cloudwatch.ComparisonOperator[spec.comparison],
            evaluation_periods=config.evaluation_periods,
            datapoints_to_alarm=config.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData[spec.missing_data],
        )
        notify(alarm, self._topic(config.topic))
        self.alarms.setdefault(alarm_name, []).append(alarm)
        return alarm


def notify(alarm: cloudwatch.AlarmBase, topic: sns.ITopic) -> None:
    action = cloudwatch_actions.SnsAction(topic)
    alarm.add_alarm_action(action)
    # Telling the same topic when it clears lets a pager resolve the incident by itself.
    alarm.add_ok_action(action)
