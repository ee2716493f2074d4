"""RouterAlarms: the page and ticket topics and the alarms on the parts every model shares.

Pages mean a caller is hurt now (router errors and throttles, dead letters, async requests stuck, the sweeper
silent); tickets mean money or headroom is at stake (provisioned concurrency unused or overflowing, the router's
p99 duration near its timeout, the stage's cost per 1,000 predictions). Per-model SLO pages live with the
model (:mod:`infra.constructs.slo`). The alarms on one model's endpoints live in that model's stack
(:mod:`infra.constructs.endpoint_alarms`) and notify the same topics, which admit every alarm of the stage:
the model stacks' names start with the platform stack's name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.config.telemetry import (
    METRICS_NAMESPACE,
    MISMATCHED_NOTIFICATIONS_METRIC,
    OLDEST_OPEN_JOB_AGE_METRIC,
    RESULTS_SERVICE,
    ROUTER_SERVICE,
    SWEEPER_SERVICE,
    UNHANDLED_ERRORS_METRIC,
)
from infra.config.types import ALARM_TOPICS, AlarmConfig
from infra.constructs.cost_metrics import cost_per_1000_predictions
from infra.constructs.on_call_alarm import OnCallAlarms, pascal


class RouterAlarms(Construct):
    """Page and ticket topics under a CMK CloudWatch may use, and the alarms on the router, API and async path.

    Props (keyword-only):
        alarms: topic, threshold and window per alarm name (all of ``ALARM_NAMES``).
        runbook_base_url: the https URL where ``<alarm>.md`` runbooks live, linked in each description.
        router_alias: the router's ``live`` alias (metrics per alias).
        router_provisioned: whether the alias has provisioned concurrency (PC alarms only then).
        router_timeout: the router's timeout (its duration ticket is a share of it).
        dead_letter_queue: the async notification dead-letter queue.
        subscriptions: email addresses per topic ("page", "ticket").
        removal_policy: for the topics' key.

    Attributes: ``key``, ``topics`` (by topic name), ``alarms`` (alarm name -> list of alarms).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        alarms: Mapping[str, AlarmConfig],
        runbook_base_url: str,
        router_alias: lambda_.Alias,
        router_provisioned: bool,
        router_timeout: Duration,
        dead_letter_queue: sqs.IQueue,
        subscriptions: Mapping[str, Sequence[str]],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)

        # SNS topics under the AWS-managed key cannot receive alarm actions: CloudWatch needs a key policy
        # grant, which only a customer-managed key allows.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="Encrypts the page and ticket alarm topics",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        stack = Stack.of(self)
        # CloudWatch acts for this stage's alarms only (confused deputy): CloudFormation names every alarm
        # "<stack name>-<logical id>-<suffix>", and every stack of the stage starts with this stack's name.
        from_these_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {
                "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}"
                f":alarm:{stack.stack_name}-*"
            },
        }
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
                conditions=from_these_alarms,
            )
        )
        self.topics: dict[str, sns.Topic] = {}
        for topic_name in ALARM_TOPICS:
            topic = sns.Topic(
                self,
                f"{pascal(topic_name)}Topic",
                master_key=self.key,
                enforce_ssl=True,
                display_name=f"Inference router {topic_name}",
            )
            # enforce_ssl gives the topic a policy of its own, which replaces SNS's default one: without this
            # statement nothing lets CloudWatch publish, and every alarm action fails silently.
            topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCloudWatchAlarmsToPublish",
                    principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                    actions=["sns:Publish"],
                    resources=[topic.topic_arn],
                    conditions=from_these_alarms,
                )
            )
            for email in subscriptions.get(topic_name, ()):
                topic.add_subscription(sns_subscriptions.EmailSubscription(email))
            self.topics[topic_name] = topic

        self.on_call = OnCallAlarms(configs=alarms, runbook_base_url=runbook_base_url, topic=self.topics.__getitem__)
        self.alarms = self.on_call.alarms

        def alias_metric(metric_name: str) -> Callable[[str, Duration], cloudwatch.IMetric]:
            return lambda statistic, period: router_alias.metric(metric_name, statistic=statistic, period=period)

        def service_metric(metric_name: str, service: str) -> Callable[[str, Duration], cloudwatch.IMetric]:
            # Powertools EMF gives each custom metric the emitting function's "service" dimension.
            return lambda statistic, period: cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=metric_name,
                dimensions_map={"service": service},
                statistic=statistic,
                period=period,
            )

        router_subject = "the router's live alias"
        if router_provisioned:
            self._add("router_pc_low_utilization", router_subject, alias_metric("ProvisionedConcurrencyUtilization"))
            self._add(
                "router_pc_spillover",
                router_subject,
                lambda statistic, period: cloudwatch.MathExpression(
                    expression="spillover / invocations",
                    using_metrics={
                        "spillover": alias_metric("ProvisionedConcurrencySpilloverInvocations")(statistic, period),
                        "invocations": alias_metric("Invocations")(statistic, period),
                    },
                    period=period,
                    label="share of invocations outside provisioned concurrency",
                ),
            )
        self._add("router_errors", router_subject, alias_metric("Errors"))
        self._add(
            "router_unhandled_errors",
            "the router",
            service_metric(UNHANDLED_ERRORS_METRIC, ROUTER_SERVICE),
        )
        self._add("router_throttles", router_subject, alias_metric("Throttles"))
        self.on_call.add(
            self,
            "router_duration_near_timeout",
            "",
            router_subject,
            alias_metric("Duration"),
            threshold_unit=router_timeout.to_milliseconds(),
        )
        self._add(
            "dlq_not_empty",
            "the async result dead-letter queue",
            lambda statistic, period: dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic=statistic, period=period
            ),
        )
        self._add(
            "async_forged_notifications",
            "the result function",
            service_metric(MISMATCHED_NOTIFICATIONS_METRIC, RESULTS_SERVICE),
        )
        # The sweeper reports it every run (functions/handlers/sweeper/handler.py), 0 when no job is open.
        self._add(
            "async_oldest_open_job_age",
            "the oldest async job",
            service_metric(OLDEST_OPEN_JOB_AGE_METRIC, SWEEPER_SERVICE),
        )

        # Sum is the only statistic the ratio takes: the expression reads each metric's Sum.
        self._add(
            "cost_per_1000_predictions",
            "the stage",
            lambda _, period: cost_per_1000_predictions(None, period=period),
        )

    def runbook(self, alarm_name: str) -> str:
        return self.on_call.runbook(alarm_name)

    def _add(self, alarm_name: str, subject: str, metric: Callable[[str, Duration], cloudwatch.IMetric]) -> None:
        self.on_call.add(self, alarm_name, "", subject, metric)
