"""The stage config as typed, frozen values: what the constructs take, already checked by the loader."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from functions.config.caller_policy import CallerPolicy
from functions.config.config_reader import ConfigError
from functions.config.prices import RegionPrices

DEFAULT_STAGE: Final[str] = "dev"
DEFAULT_ASYNC_INSTANCE_TYPE: Final[str] = "ml.g5.xlarge"
# Serverless endpoints run on CPU: a Deep Learning Container for one is resolved as for a CPU instance.
SERVERLESS_CPU_INSTANCE_TYPE: Final[str] = "ml.m5.xlarge"
# The serving image built from this repo's Dockerfiles by CDK at deploy time (never at synth).
IMAGE_ASSET: Final[str] = "asset"
# The router's log levels as the stage file names them (the construct maps each to Lambda's own level).
LOG_LEVEL_NAMES: Final[tuple[str, ...]] = ("DEBUG", "INFO", "WARNING", "ERROR")
ALARM_TOPICS: Final[tuple[str, ...]] = ("page", "ticket")
AUTH_MODES: Final[tuple[str, ...]] = ("iam", "api_key")
# What the stage file may say about removal (the stack maps each to CDK's RemovalPolicy).
REMOVAL_POLICY_NAMES: Final[tuple[str, ...]] = ("retain", "destroy")
# How CodeDeploy shifts the router's live alias to a new version (infra/config/router_deployment.py).
DEPLOYMENT_STRATEGIES: Final[tuple[str, ...]] = ("canary", "linear", "all_at_once")

AuthMode = Literal["iam", "api_key"]
AlarmTopic = Literal["page", "ticket"]
DeploymentStrategy = Literal["canary", "linear", "all_at_once"]


class StageConfigError(ConfigError):
    """The stage config is invalid, or disagrees with the model config; the message names file and field."""


@dataclass(frozen=True, slots=True)
class ProvisionedConcurrencyScaling:
    """Target tracking on SageMakerVariantProvisionedConcurrencyUtilization for a serverless endpoint."""

    min_capacity: int
    max_capacity: int
    target_utilization: float


@dataclass(frozen=True, slots=True)
class EndpointDeploymentConfig:
    """A SageMaker deployment guardrail: a blue/green update, its traffic shifting and its rollback alarms.

    ``traffic`` is ALL_AT_ONCE, CANARY or LINEAR (TrafficRoutingConfig.Type); ``step_percent`` is the canary
    size or the linear step as a percentage of the variant's capacity (0 for all at once); ``wait_interval_s``
    is the baking period after each step, ``termination_wait_s`` the final one before the old fleet goes.
    The new fleet rolls back while its 5XX errors per minute exceed ``rollback_5xx_per_minute`` or its p99
    model latency exceeds ``rollback_p99_latency_ms``.
    """

    traffic: str
    step_percent: int
    wait_interval_s: int
    termination_wait_s: int
    max_execution_timeout_s: int
    rollback_5xx_per_minute: int
    rollback_p99_latency_ms: int


@dataclass(frozen=True, slots=True)
class ServerlessEndpointConfig:
    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int  # 0 = none
    pc_autoscaling: ProvisionedConcurrencyScaling | None
    deployment: EndpointDeploymentConfig | None = None  # None: SageMaker's default (blue/green, all at once)


@dataclass(frozen=True, slots=True)
class AsyncEndpointConfig:
    instance_type: str
    max_concurrent_invocations_per_instance: int
    max_instances: int
    backlog_target_per_instance: float
    scale_in_cooldown_s: int
    scale_out_cooldown_s: int
    deployment: EndpointDeploymentConfig | None = None  # None: SageMaker's default (blue/green, all at once)


@dataclass(frozen=True, slots=True)
class ModelDeployConfig:
    image: str  # IMAGE_ASSET (build docker/serving at deploy) or an ECR URI, may hold {account} and {region}
    # The same for the async endpoint; IMAGE_ASSET builds the variant its instance type needs
    # (infra/config/instances.py: docker/serving-gpu on GPU families, docker/serving otherwise).
    async_image: str
    model_data_url: str | None  # s3:// URL of a model.tar.gz; None = package the model's artifact from the repo


@dataclass(frozen=True, slots=True)
class ScheduledCapacity:
    """A scheduled action on the router's provisioned concurrency: from ``cron`` (UTC) on, keep it in [min, max]."""

    name: str
    cron: str  # an Application Auto Scaling schedule expression, "cron(minutes hours day month weekday year)"
    min_capacity: int
    max_capacity: int


@dataclass(frozen=True, slots=True)
class RouterPcAutoscaling:
    """Application Auto Scaling of the live alias's provisioned concurrency: target tracking and/or a schedule."""

    min_capacity: int
    max_capacity: int
    target_utilization: float | None  # on LambdaProvisionedConcurrencyUtilization; None = schedule only
    schedule: tuple[ScheduledCapacity, ...]


@dataclass(frozen=True, slots=True)
class RouterDeploymentConfig:
    """How CodeDeploy shifts the live alias to a new router version."""

    strategy: DeploymentStrategy
    percentage: int  # canary: the first step; linear: every step; all_at_once: 100
    interval_minutes: int  # between steps; all_at_once: 0


@dataclass(frozen=True, slots=True)
class RouterFunctionConfig:
    memory_mb: int
    timeout_s: int
    reserved_concurrency: int | None
    provisioned_concurrency: int  # 0 = none; with autoscaling, the initial value
    provisioned_concurrency_autoscaling: RouterPcAutoscaling | None
    snap_start: bool  # SnapStart on published versions; excludes provisioned concurrency
    invoke_budget_ms: int
    response_reserve_ms: int
    log_retention_days: int
    log_level: str
    deployment: RouterDeploymentConfig


@dataclass(frozen=True, slots=True)
class Throttle:
    rate_limit: float
    burst_limit: int


@dataclass(frozen=True, slots=True)
class UsagePlanConfig:
    throttle: Throttle
    quota_per_day: int


@dataclass(frozen=True, slots=True)
class WafConfig:
    enabled: bool
    rate_limit_per_5_min: int


@dataclass(frozen=True, slots=True)
class ApiConfig:
    auth: AuthMode
    integration_timeout_ms: int
    throttle: Throttle
    usage_plan: UsagePlanConfig
    waf: WafConfig
    access_log_retention_days: int
    create_account_cloudwatch_role: bool
    # An IAM stage's methods require an API key too, so the usage plan's throttle and quota meter each caller.
    require_api_key: bool


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    topic: AlarmTopic
    threshold: float
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int


@dataclass(frozen=True, slots=True)
class SloTargets:
    """One model's objectives over the SLO's rolling period, each a share of the router's answers."""

    availability_target: float  # answers that are not 5XX, e.g. 0.999
    latency_target_ms: int  # the router's total time for one answer
    latency_target: float  # answers within latency_target_ms, e.g. 0.99


@dataclass(frozen=True, slots=True)
class BurnRateWindow:
    """A pair of windows that page together: both must burn the error budget faster than ``burn_rate``."""

    long_window_s: int
    short_window_s: int
    burn_rate: float


@dataclass(frozen=True, slots=True)
class SloConfig:
    rolling_days: int
    defaults: SloTargets
    models: dict[str, SloTargets]  # every model of the model config, the defaults applied
    burn_rate_pages: tuple[BurnRateWindow, ...]
    min_requests: int  # a long window with fewer requests never pages (one 503 in a quiet hour is no outage)


@dataclass(frozen=True, slots=True)
class AsyncStorageConfig:
    object_expiry_days: int
    access_log_expiry_days: int
    queue_visibility_timeout_s: int
    max_receive_count: int
    result_function_timeout_s: int
    result_batch_size: int
    sweep_interval_minutes: int
    invocation_timeout_s: int
    request_ttl_s: int
    result_inline_max_bytes: int


@dataclass(frozen=True, slots=True)
class DataPerimeterConfig:
    """Who besides the stage's own functions and endpoints may touch async data (bucket, key, result queue)."""

    break_glass_role_arn: str | None  # an operator role for redrive, resubmit and inspection; None = nobody


@dataclass(frozen=True, slots=True)
class DriftConfig:
    """The drift job: its EventBridge schedule and what counts as drifted (infra/config/drift.py)."""

    schedule: str  # rate(...) or cron(...)
    psi_threshold: float  # a feature over it is drifted; also the feature_drift ticket's threshold
    ks_p_value: float  # a continuous feature whose KS p-value falls below it is drifted
    window_days: int  # the days before each run the job reads


@dataclass(frozen=True, slots=True)
class CaptureStageConfig:
    """The capture bucket (infra/config/capture.py)."""

    retention_days: int  # lifecycle expiry of captured requests and drift reports


@dataclass(frozen=True, slots=True)
class StageConfig:
    name: str
    source: str
    account: str | None
    region: str
    endpoint_name_prefix: str
    serverless_concurrency_budget: int
    removal_policy: Literal["retain", "destroy"]
    powertools_layer_arn: str
    runbook_base_url: str
    router: RouterFunctionConfig
    api: ApiConfig
    models: dict[str, ModelDeployConfig]
    serverless_endpoints: dict[str, ServerlessEndpointConfig]
    async_endpoints: dict[str, AsyncEndpointConfig]
    async_storage: AsyncStorageConfig
    data_perimeter: DataPerimeterConfig
    alarms: dict[str, AlarmConfig]
    slo: SloConfig
    alarm_subscriptions: dict[str, tuple[str, ...]]
    tags: dict[str, str]
    caller_policy: CallerPolicy | None  # None: every authenticated caller may call every model
    prices: RegionPrices  # the region's row of functions/config/prices.json, the stage's "prices" merged over it
    serverless_endpoint_defaults: ServerlessEndpointConfig  # what a serverless endpoint not overridden gets
    async_default_instance_type: str  # async_endpoint_defaults.instance_type
    capture: CaptureStageConfig
    drift: DriftConfig

    def endpoint_name(self, route_endpoint: str) -> str:
        """The physical SageMaker endpoint name; the router builds the same one from ENDPOINT_NAME_PREFIX."""
        return f"{self.endpoint_name_prefix}{route_endpoint}"
