"""RouterAlarms: the page and ticket topics and every alarm on-call receives.

Pages mean a caller is hurt now (spillover into cold starts, errors, throttles, 5XX, dead letters, async
requests stuck); tickets mean money is wasted (provisioned concurrency nobody uses). Each alarm's statistic,
comparison and missing-data treatment are fixed in :mod:`infra.config.alarm_specs`; its threshold, window
and topic come from the stage config. Each description says what the alarm means and links its runbook,
``docs/runbooks/<alarm>.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as sns_subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from functions.config.telemetry import METRICS_NAMESPACE, OLDEST_OPEN_JOB_AGE_METRIC, SWEEPER_SERVICE
from infra.config.alarm_specs import ALARM_NAMES, ALARM_SPECS
from infra.config.types import ALARM_TOPICS, AlarmConfig
from infra.constructs.model_endpoint import SAGEMAKER_NAMESPACE, VARIANT_NAME


@dataclass(frozen=True, slots=True)
class ServerlessEndpointTarget:
    """A serverless endpoint to watch; PC alarms only exist where provisioned concurrency does."""

    endpoint_name: str
    provisioned: bool


def runbook_slug(alarm_name: str) -> str:
    return alarm_name.replace("_", "-")


def _duration_text(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.replace("-", "_").split("_"))


class RouterAlarms(Construct):
    """Page and ticket topics under a CMK CloudWatch may use, and every alarm of the specs, each with an action.

    Props (keyword-only):
        alarms: topic, threshold and window per alarm name (all of ``ALARM_NAMES``).
        runbook_base_url: where ``<alarm>.md`` runbooks live (repo path or URL), linked in each description.
        router_alias: the router's ``live`` alias (metrics per alias).
        router_provisioned: whether the alias has provisioned concurrency (PC alarms only then).
        api_stage: the REST API stage (5XX rate).
        serverless_endpoints / async_endpoint_names: the SageMaker endpoints to watch.
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
        api_stage: apigateway.Stage,
        serverless_endpoints: Sequence[ServerlessEndpointTarget],
        async_endpoint_names: Sequence[str],
        dead_letter_queue: sqs.IQueue,
        subscriptions: Mapping[str, Sequence[str]],
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._configs = alarms
        self._runbook_base_url = runbook_base_url.rstrip("/")

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
        # CloudWatch acts for this account's alarms only (confused deputy): CloudFormation names every alarm
        # "<stack name>-<logical id>-<suffix>", so the stack's alarms share one ARN prefix.
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
                f"{_pascal(topic_name)}Topic",
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

        self.alarms: dict[str, list[cloudwatch.Alarm]] = {name: [] for name in ALARM_NAMES}

        def alias_metric(metric_name: str) -> Callable[[str, Duration], cloudwatch.IMetric]:
            return lambda statistic, period: router_alias.metric(metric_name, statistic=statistic, period=period)

        def sagemaker_metric(
            metric_name: str, endpoint: str, *, variant: bool
        ) -> Callable[[str, Duration], cloudwatch.IMetric]:
            dimensions = {"EndpointName": endpoint, **({"VariantName": VARIANT_NAME} if variant else {})}
            return lambda statistic, period: cloudwatch.Metric(
                namespace=SAGEMAKER_NAMESPACE,
                metric_name=metric_name,
                dimensions_map=dimensions,
                statistic=statistic,
                period=period,
            )

        router_subject = "the router's live alias"
        if router_provisioned:
            self._alarm(
                "router_pc_low_utilization", "", router_subject, alias_metric("ProvisionedConcurrencyUtilization")
            )
            self._alarm(
                "router_pc_spillover", "", router_subject, alias_metric("ProvisionedConcurrencySpilloverInvocations")
            )
        self._alarm("router_errors", "", router_subject, alias_metric("Errors"))
        self._alarm("router_throttles", "", router_subject, alias_metric("Throttles"))
        self._alarm(
            "api_5xx_rate",
            "",
            f"API stage {api_stage.stage_name}",
            lambda statistic, period: api_stage.metric_server_error(statistic=statistic, period=period),
        )
        for endpoint in serverless_endpoints:
            subject = f"serverless endpoint {endpoint.endpoint_name}"
            if endpoint.provisioned:
                self._alarm(
                    "serverless_pc_low_utilization",
                    endpoint.endpoint_name,
                    subject,
                    sagemaker_metric(
                        "ServerlessProvisionedConcurrencyUtilization", endpoint.endpoint_name, variant=True
                    ),
                )
                self._alarm(
                    "serverless_pc_spillover",
                    endpoint.endpoint_name,
                    subject,
                    sagemaker_metric(
                        "ServerlessProvisionedConcurrencySpilloverInvocations", endpoint.endpoint_name, variant=True
                    ),
                )
            self._alarm(
                "serverless_5xx_errors",
                endpoint.endpoint_name,
                subject,
                sagemaker_metric("Invocation5XXErrors", endpoint.endpoint_name, variant=True),
            )
        self._alarm(
            "dlq_not_empty",
            "",
            "the async result dead-letter queue",
            lambda statistic, period: dead_letter_queue.metric_approximate_number_of_messages_visible(
                statistic=statistic, period=period
            ),
        )
        for endpoint_name in async_endpoint_names:
            subject = f"async endpoint {endpoint_name}"
            self._alarm(
                "async_backlog_without_capacity",
                endpoint_name,
                subject,
                sagemaker_metric("HasBacklogWithoutCapacity", endpoint_name, variant=False),
            )
            self._alarm(
                "async_oldest_request_age",
                endpoint_name,
                subject,
                sagemaker_metric("ApproximateAgeOfOldestRequest", endpoint_name, variant=False),
            )

        # The sweeper reports it every run (functions/handlers/sweeper/handler.py), 0 when no job is open.
        self._alarm(
            "async_oldest_open_job_age",
            "",
            "the oldest async job",
            lambda statistic, period: cloudwatch.Metric(
                namespace=METRICS_NAMESPACE,
                metric_name=OLDEST_OPEN_JOB_AGE_METRIC,
                dimensions_map={"service": SWEEPER_SERVICE},
                statistic=statistic,
                period=period,
            ),
        )

    def runbook(self, alarm_name: str) -> str:
        return f"{self._runbook_base_url}/{runbook_slug(alarm_name)}.md"

    def _alarm(
        self,
        alarm_name: str,
        qualifier: str,
        subject: str,
        metric: Callable[[str, Duration], cloudwatch.IMetric],
    ) -> cloudwatch.Alarm:
        spec = ALARM_SPECS[alarm_name]
        config = self._configs[alarm_name]
        period = Duration.seconds(config.period_s)
        meaning = spec.meaning.format(
            subject=subject,
            threshold=config.threshold,
            window=_duration_text(config.period_s * config.evaluation_periods),
            period=_duration_text(config.period_s),
            periods=f"{config.datapoints_to_alarm} of {config.evaluation_periods} periods",
        )
        alarm = cloudwatch.Alarm(
            self,
            f"{_pascal(alarm_name)}{_pascal(qualifier)}",
            alarm_description=f"{meaning} Runbook: {self.runbook(alarm_name)}",
            metric=metric(spec.statistic, period),
            threshold=config.threshold,
            comparison_operator=cloudwatch.ComparisonOperator[spec.comparison],
            evaluation_periods=config.evaluation_periods,
            datapoints_to_alarm=config.datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData[spec.missing_data],
        )
        action = cloudwatch_actions.SnsAction(self.topics[config.topic])
        alarm.add_alarm_action(action)
        # Telling the same topic when it clears lets a pager resolve the incident by itself.
        alarm.add_ok_action(action)
        self.alarms[alarm_name].append(alarm)
        return alarm
