"""Stage config: the per-stage deploy knobs in ``infra/stages.json``, typed and checked at synth.

The model and route config (``functions/models.json``, read by the router too) says *which* models and
endpoints exist; this file says *how big* each one is in each stage. Every rule that AWS would otherwise
enforce at deploy time, minutes in, is checked here first, and every error names the file and the field,
e.g. ``infra/stages.json: stages.prod.serverless_endpoints.iris.memory_mb: 3000 is not one of 1024, 2048, ...``.

A stage is ``defaults`` deep-merged with ``stages.<name>`` (objects merge key by key, anything else
replaces), so a stage only states what differs. Serverless and async endpoint knobs likewise start from
``serverless_endpoint_defaults`` / ``async_endpoint_defaults`` and take per-endpoint overrides, so a new
endpoint in ``functions/models.json`` deploys with sane sizes without touching this file.

Example:
    >>> stage = load_stage_config("prod")
    >>> stage.serverless_endpoints["iris"].memory_mb
    2048
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from functions.config.config_reader import ConfigError, read_json_file
from functions.config.limits import LAMBDA_MAX_BODY_BYTES, SERVERLESS_MAX_BODY_BYTES
from functions.config.model_types import ModelsConfig
from functions.config.models import ENDPOINT_NAME_PATTERN, load_models_config

DEFAULT_STAGES_PATH: Final[Path] = Path(__file__).resolve().parent / "stages.json"
DEFAULT_STAGE: Final[str] = "dev"

# SageMaker serverless limits (design.md): memory 1024-6144 MB in 1024 MB steps, concurrency 1-200.
SERVERLESS_MEMORY_SIZES: Final[tuple[int, ...]] = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY: Final[int] = 200
# Async inference: one invocation may run for at most an hour.
ASYNC_MAX_INVOCATION_TIMEOUT_S: Final[int] = 3600
DEFAULT_ASYNC_INSTANCE_TYPE: Final[str] = "ml.g5.xlarge"
# Serverless endpoints run on CPU: a Deep Learning Container for one is resolved as for a CPU instance.
SERVERLESS_CPU_INSTANCE_TYPE: Final[str] = "ml.m5.xlarge"
# API Gateway REST integrations time out at 29 s unless the account has a raised quota; we do not assume one.
API_GATEWAY_MAX_TIMEOUT_MS: Final[int] = 29_000
LAMBDA_MEMORY_RANGE: Final[tuple[int, int]] = (128, 10_240)
# The values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS: Final[tuple[int, ...]] = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
LOG_LEVELS: Final[tuple[str, ...]] = ("DEBUG", "INFO", "WARNING", "ERROR")
ALARM_TOPICS: Final[tuple[str, ...]] = ("page", "ticket")
AUTH_MODES: Final[tuple[str, ...]] = ("iam", "api_key")
REMOVAL_POLICIES: Final[tuple[str, ...]] = ("retain", "destroy")
# The alarms RouterAlarms creates (issue 3). Each has a runbook at docs/runbooks/<name with dashes>.md.
ALARM_NAMES: Final[tuple[str, ...]] = (
    "router_pc_low_utilization",
    "serverless_pc_low_utilization",
    "router_pc_spillover",
    "serverless_pc_spillover",
    "router_errors",
    "router_throttles",
    "api_5xx_rate",
    "serverless_5xx_errors",
    "dlq_not_empty",
    "async_backlog_without_capacity",
    "async_oldest_request_age",
    "async_oldest_open_job_age",
)
# CloudWatch: a period is 10, 30 or a multiple of 60 s, and evaluation periods x period may not exceed a day.
ALARM_MAX_WINDOW_S: Final[int] = 86_400

# The serving image built from this repo's Dockerfiles by CDK at deploy time (never at synth).
IMAGE_ASSET: Final[str] = "asset"
STAGE_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z][a-z0-9-]{0,15}$")
REGION_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
ACCOUNT_PATTERN: Final[re.Pattern[str]] = re.compile(r"^\d{12}$")
INSTANCE_TYPE_PATTERN: Final[re.Pattern[str]] = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
POWERTOOLS_LAYER_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^arn:aws:lambda:(?P<region>[a-z0-9-]+):017000801446:layer:"
    r"AWSLambdaPowertoolsPythonV3-(?P<python>python3\d+)-(?P<arch>arm64|x86_64):(?P<version>\d+)$"
)
# The router runs on Runtime.PYTHON_3_14 / ARM_64; a layer built for anything else would not import.
POWERTOOLS_PYTHON: Final[str] = "python314"
POWERTOOLS_ARCH: Final[str] = "arm64"
# {account} and {region} are filled in by CloudFormation, so one stage file serves any account.
ECR_IMAGE_PATTERN: Final[re.Pattern[str]] = re.compile(
    r"^(?:\d{12}|\{account\})\.dkr\.ecr\.(?:[a-z0-9-]+|\{region\})\.amazonaws\.com(?:\.cn)?/"
    r"[a-z0-9][a-z0-9._/-]*(?::[A-Za-z0-9_.-]{1,128}|@sha256:[0-9a-f]{64})$"
)
S3_URL_PATTERN: Final[re.Pattern[str]] = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)$")
EMAIL_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

AuthMode = Literal["iam", "api_key"]
AlarmTopic = Literal["page", "ticket"]


class StageConfigError(ConfigError):
    """The stage config is invalid, or disagrees with the model config; the message names file and field."""


@dataclass(frozen=True, slots=True)
class ProvisionedConcurrencyScaling:
    """Target tracking on SageMakerVariantProvisionedConcurrencyUtilization for a serverless endpoint."""

    min_capacity: int
    max_capacity: int
    target_utilization: float


@dataclass(frozen=True, slots=True)
class ServerlessEndpointConfig:
    memory_mb: int
    max_concurrency: int
    provisioned_concurrency: int  # 0 = none
    pc_autoscaling: ProvisionedConcurrencyScaling | None


@dataclass(frozen=True, slots=True)
class AsyncEndpointConfig:
    instance_type: str
    max_concurrent_invocations_per_instance: int
    max_instances: int
    backlog_target_per_instance: float
    scale_in_cooldown_s: int
    scale_out_cooldown_s: int


@dataclass(frozen=True, slots=True)
class ModelDeployConfig:
    image: str  # IMAGE_ASSET (build docker/serving at deploy) or an ECR URI, may hold {account} and {region}
    async_image: str  # the same for the async GPU endpoint (IMAGE_ASSET builds docker/serving-gpu)
    model_data_url: str | None  # s3:// URL of a model.tar.gz; None = package the model's artifact from the repo


@dataclass(frozen=True, slots=True)
class RouterFunctionConfig:
    memory_mb: int
    timeout_s: int
    reserved_concurrency: int | None
    provisioned_concurrency: int  # 0 = none
    invoke_budget_ms: int
    response_reserve_ms: int
    log_retention_days: int
    log_level: str


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


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    topic: AlarmTopic
    threshold: float
    period_s: int
    evaluation_periods: int
    datapoints_to_alarm: int


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
    alarms: dict[str, AlarmConfig]
    alarm_subscriptions: dict[str, tuple[str, ...]]
    tags: dict[str, str]

    def endpoint_name(self, route_endpoint: str) -> str:
        """The physical SageMaker endpoint name; the router builds the same one from ENDPOINT_NAME_PREFIX."""
        return f"{self.endpoint_name_prefix}{route_endpoint}"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; any other value in ``override`` replaces the one in ``base``."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class _Reader:
    """Checks one field at a time and names its path in every error."""

    def __init__(self, source: str, prefix: str) -> None:
        self.source = source
        self.prefix = prefix

    def fail(self, path: str, message: str) -> StageConfigError:
        return StageConfigError(f"{self.source}: {self.prefix}{path}: {message}")

    def obj(self, value: Any, path: str, allowed: frozenset[str] | None = None) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(path, f"must be an object, got {type(value).__name__}")
        if allowed is not None:
            unknown = sorted(set(value) - allowed)
            if unknown:
                raise self.fail(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")
        return value

    def field(self, raw: dict[str, Any], key: str, path: str) -> Any:
        if key not in raw:
            raise self.fail(f"{path}.{key}", "is required (set it in the stage or in defaults)")
        return raw[key]

    def integer(self, value: Any, path: str, low: int, high: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(path, f"must be a whole number, got {value!r}")
        if value < low or (high is not None and value > high):
            bounds = f"{low}..{high}" if high is not None else f"at least {low}"
            raise self.fail(path, f"{value} is outside {bounds}")
        return value

    def number(self, value: Any, path: str, low: float, high: float, *, low_open: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(path, f"must be a finite number, got {value!r}")
        if value < low or (low_open and value == low) or value > high:
            raise self.fail(path, f"{value} is outside {'(' if low_open else '['}{low}, {high}]")
        return float(value)

    def string(self, value: Any, path: str, pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if not isinstance(value, str) or not value:
            raise self.fail(path, f"must be a non-empty string, got {value!r}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(path, f"{value!r} is not {hint or f'matching {pattern.pattern}'}")
        return value

    def choice(self, value: Any, path: str, choices: tuple[Any, ...]) -> Any:
        if value not in choices:
            raise self.fail(path, f"{value!r} is not one of {', '.join(str(choice) for choice in choices)}")
        return value

    def boolean(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"must be true or false, got {value!r}")
        return value


def _throttle(reader: _Reader, raw_value: Any, path: str) -> Throttle:
    raw = reader.obj(raw_value, path, frozenset({"rate_limit", "burst_limit"}))
    rate = reader.number(reader.field(raw, "rate_limit", path), f"{path}.rate_limit", 0, 1_000_000, low_open=True)
    burst = reader.integer(reader.field(raw, "burst_limit", path), f"{path}.burst_limit", 1, 1_000_000)
    return Throttle(rate, burst)


def _router(reader: _Reader, raw_value: Any) -> RouterFunctionConfig:
    path = "router"
    keys = {
        "memory_mb",
        "timeout_s",
        "reserved_concurrency",
        "provisioned_concurrency",
        "invoke_budget_ms",
        "response_reserve_ms",
        "log_retention_days",
        "log_level",
    }
    raw = reader.obj(raw_value, path, frozenset(keys))
    reserved_raw = reader.field(raw, "reserved_concurrency", path)
    reserved = None if reserved_raw is None else reader.integer(reserved_raw, f"{path}.reserved_concurrency", 1)
    provisioned = reader.integer(
        reader.field(raw, "provisioned_concurrency", path), f"{path}.provisioned_concurrency", 0
    )
    if reserved is not None and provisioned > reserved:
        raise reader.fail(
            f"{path}.provisioned_concurrency",
            f"{provisioned} is above reserved_concurrency {reserved}; Lambda cannot keep more warm than it may run",
        )
    return RouterFunctionConfig(
        memory_mb=reader.integer(reader.field(raw, "memory_mb", path), f"{path}.memory_mb", *LAMBDA_MEMORY_RANGE),
        timeout_s=reader.integer(reader.field(raw, "timeout_s", path), f"{path}.timeout_s", 1, 900),
        reserved_concurrency=reserved,
        provisioned_concurrency=provisioned,
        invoke_budget_ms=reader.integer(reader.field(raw, "invoke_budget_ms", path), f"{path}.invoke_budget_ms", 50),
        response_reserve_ms=reader.integer(
            reader.field(raw, "response_reserve_ms", path), f"{path}.response_reserve_ms", 1
        ),
        log_retention_days=reader.choice(
            reader.field(raw, "log_retention_days", path), f"{path}.log_retention_days", LOG_RETENTION_DAYS
        ),
        log_level=reader.choice(reader.field(raw, "log_level", path), f"{path}.log_level", LOG_LEVELS),
    )


def _api(reader: _Reader, raw_value: Any) -> ApiConfig:
    path = "api"
    keys = {
        "auth",
        "integration_timeout_ms",
        "throttle",
        "usage_plan",
        "waf",
        "access_log_retention_days",
        "create_account_cloudwatch_role",
    }
    raw = reader.obj(raw_value, path, frozenset(keys))
    plan_path = f"{path}.usage_plan"
    plan_raw = reader.obj(reader.field(raw, "usage_plan", path), plan_path, frozenset({"throttle", "quota_per_day"}))
    waf_path = f"{path}.waf"
    waf_raw = reader.obj(reader.field(raw, "waf", path), waf_path, frozenset({"enabled", "rate_limit_per_5_min"}))
    return ApiConfig(
        auth=reader.choice(reader.field(raw, "auth", path), f"{path}.auth", AUTH_MODES),
        integration_timeout_ms=reader.integer(
            reader.field(raw, "integration_timeout_ms", path),
            f"{path}.integration_timeout_ms",
            50,
            API_GATEWAY_MAX_TIMEOUT_MS,
        ),
        throttle=_throttle(reader, reader.field(raw, "throttle", path), f"{path}.throttle"),
        usage_plan=UsagePlanConfig(
            throttle=_throttle(reader, reader.field(plan_raw, "throttle", plan_path), f"{plan_path}.throttle"),
            quota_per_day=reader.integer(
                reader.field(plan_raw, "quota_per_day", plan_path), f"{plan_path}.quota_per_day", 1
            ),
        ),
        waf=WafConfig(
            enabled=reader.boolean(reader.field(waf_raw, "enabled", waf_path), f"{waf_path}.enabled"),
            # AWS WAF rate-based rules take a limit of at least 10 requests per evaluation window.
            rate_limit_per_5_min=reader.integer(
                reader.field(waf_raw, "rate_limit_per_5_min", waf_path),
                f"{waf_path}.rate_limit_per_5_min",
                10,
                2_000_000_000,
            ),
        ),
        access_log_retention_days=reader.choice(
            reader.field(raw, "access_log_retention_days", path),
            f"{path}.access_log_retention_days",
            LOG_RETENTION_DAYS,
        ),
        create_account_cloudwatch_role=reader.boolean(
            reader.field(raw, "create_account_cloudwatch_role", path), f"{path}.create_account_cloudwatch_role"
        ),
    )


def _serverless_endpoint(reader: _Reader, raw_value: Any, path: str) -> ServerlessEndpointConfig:
    keys = {"memory_mb", "max_concurrency", "provisioned_concurrency", "pc_autoscaling"}
    raw = reader.obj(raw_value, path, frozenset(keys))
    memory = reader.field(raw, "memory_mb", path)
    if memory not in SERVERLESS_MEMORY_SIZES or isinstance(memory, bool):
        raise reader.fail(
            f"{path}.memory_mb",
            f"{memory!r} is not one of {', '.join(map(str, SERVERLESS_MEMORY_SIZES))} "
            "(SageMaker serverless memory is 1024-6144 MB in 1024 MB steps)",
        )
    max_concurrency = reader.integer(
        reader.field(raw, "max_concurrency", path), f"{path}.max_concurrency", 1, SERVERLESS_MAX_CONCURRENCY
    )
    provisioned = reader.integer(
        reader.field(raw, "provisioned_concurrency", path), f"{path}.provisioned_concurrency", 0
    )
    if provisioned > max_concurrency:
        raise reader.fail(
            f"{path}.provisioned_concurrency",
            f"{provisioned} is above max_concurrency {max_concurrency}; SageMaker requires provisioned <= max",
        )
    scaling: ProvisionedConcurrencyScaling | None = None
    scaling_raw = raw.get("pc_autoscaling")
    if scaling_raw is not None:
        scaling_path = f"{path}.pc_autoscaling"
        scaling_obj = reader.obj(
            scaling_raw, scaling_path, frozenset({"min_capacity", "max_capacity", "target_utilization"})
        )
        if provisioned == 0:
            raise reader.fail(scaling_path, "needs provisioned_concurrency of at least 1 to scale")
        low = reader.integer(reader.field(scaling_obj, "min_capacity", scaling_path), f"{scaling_path}.min_capacity", 1)
        high = reader.integer(
            reader.field(scaling_obj, "max_capacity", scaling_path), f"{scaling_path}.max_capacity", 1
        )
        if not low <= provisioned <= high:
            raise reader.fail(
                scaling_path,
                f"min_capacity {low} <= provisioned_concurrency {provisioned} <= max_capacity {high} fails",
            )
        if high > max_concurrency:
            raise reader.fail(f"{scaling_path}.max_capacity", f"{high} is above max_concurrency {max_concurrency}")
        target = reader.number(
            reader.field(scaling_obj, "target_utilization", scaling_path),
            f"{scaling_path}.target_utilization",
            0,
            1,
            low_open=True,
        )
        scaling = ProvisionedConcurrencyScaling(low, high, target)
    return ServerlessEndpointConfig(memory, max_concurrency, provisioned, scaling)


def _async_endpoint(reader: _Reader, raw_value: Any, path: str) -> AsyncEndpointConfig:
    keys = {
        "instance_type",
        "max_concurrent_invocations_per_instance",
        "max_instances",
        "backlog_target_per_instance",
        "scale_in_cooldown_s",
        "scale_out_cooldown_s",
    }
    raw = reader.obj(raw_value, path, frozenset(keys))
    return AsyncEndpointConfig(
        instance_type=reader.string(
            raw.get("instance_type", DEFAULT_ASYNC_INSTANCE_TYPE),
            f"{path}.instance_type",
            INSTANCE_TYPE_PATTERN,
            "a SageMaker instance type like ml.g5.xlarge",
        ),
        # SageMaker accepts 1-1000 concurrent invocations per instance for async endpoints.
        max_concurrent_invocations_per_instance=reader.integer(
            reader.field(raw, "max_concurrent_invocations_per_instance", path),
            f"{path}.max_concurrent_invocations_per_instance",
            1,
            1000,
        ),
        max_instances=reader.integer(reader.field(raw, "max_instances", path), f"{path}.max_instances", 1, 100),
        backlog_target_per_instance=reader.number(
            reader.field(raw, "backlog_target_per_instance", path),
            f"{path}.backlog_target_per_instance",
            0,
            10_000,
            low_open=True,
        ),
        scale_in_cooldown_s=reader.integer(
            reader.field(raw, "scale_in_cooldown_s", path), f"{path}.scale_in_cooldown_s", 0, 86_400
        ),
        scale_out_cooldown_s=reader.integer(
            reader.field(raw, "scale_out_cooldown_s", path), f"{path}.scale_out_cooldown_s", 0, 86_400
        ),
    )


def _image(reader: _Reader, value: Any, path: str, *, region: str, instance_type: str) -> str:
    if value == IMAGE_ASSET:
        return IMAGE_ASSET
    if isinstance(value, dict):
        return _dlc_image(reader, value, path, region=region, instance_type=instance_type)
    return reader.string(
        value,
        path,
        ECR_IMAGE_PATTERN,
        f"{IMAGE_ASSET!r} or an ECR image URI (<account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>; "
        "{account}/{region} allowed)",
    )


def _dlc_image(reader: _Reader, value: dict[str, Any], path: str, *, region: str, instance_type: str) -> str:
    """``{"dlc": {"framework", "version", "py_version"?}}``: an AWS Deep Learning Container, resolved offline."""
    spec = reader.obj(reader.field(reader.obj(value, path, frozenset({"dlc"})), "dlc", path), f"{path}.dlc",
                      frozenset({"framework", "version", "py_version"}))  # fmt: skip
    from infra.image_uris import DlcResolutionError, resolve_dlc_image

    try:
        uri = resolve_dlc_image(
            reader.string(reader.field(spec, "framework", f"{path}.dlc"), f"{path}.dlc.framework"),
            reader.string(reader.field(spec, "version", f"{path}.dlc"), f"{path}.dlc.version"),
            region=region,
            instance_type=instance_type,
            py_version=spec.get("py_version"),
        )
    except DlcResolutionError as error:
        raise reader.fail(f"{path}.dlc", str(error)) from error
    return reader.string(uri, f"{path}.dlc", ECR_IMAGE_PATTERN, "an ECR image URI")


def _async_instance_type(models: ModelsConfig, async_endpoints: dict[str, AsyncEndpointConfig], name: str) -> str:
    model = models.model(name)
    endpoint = model.route.async_endpoint if model is not None else None
    return async_endpoints[endpoint].instance_type if endpoint in async_endpoints else DEFAULT_ASYNC_INSTANCE_TYPE


def _model_deploy(
    reader: _Reader, raw_value: Any, path: str, *, region: str, serverless_type: str, async_type: str
) -> ModelDeployConfig:
    raw = reader.obj(raw_value, path, frozenset({"image", "async_image", "model_data_url"}))
    data_url = raw.get("model_data_url")
    raw_image = reader.field(raw, "image", path)
    raw_async_image = raw.get("async_image", raw_image)
    # Both containers get the same ModelDataUrl, and the packed model.tar.gz (model.onnx + signature.json,
    # infra/model_package.py) is only read by this repo's serving image: a DLC serves its own artifact layout
    # and request format, so it needs an artifact of the user's that speaks the container contract.
    dlc = [name for name, value in (("image", raw_image), ("async_image", raw_async_image)) if isinstance(value, dict)]
    if dlc and data_url is None:
        raise reader.fail(
            f"{path}.{dlc[0]}",
            "a Deep Learning Container does not read the packed model.tar.gz (model.onnx + signature.json) nor "
            "answer /invocations with Open Inference Protocol JSON by itself: set model_data_url to an artifact "
            "whose inference code serves that contract (README, 'What runs in SageMaker'), or use 'asset'",
        )
    image = _image(reader, raw_image, f"{path}.image", region=region, instance_type=serverless_type)
    return ModelDeployConfig(
        image=image,
        async_image=_image(reader, raw_async_image, f"{path}.async_image", region=region, instance_type=async_type),
        model_data_url=None
        if data_url is None
        else reader.string(data_url, f"{path}.model_data_url", S3_URL_PATTERN, "an s3://bucket/key URL"),
    )


def _alarm(reader: _Reader, raw_value: Any, path: str) -> AlarmConfig:
    keys = {"topic", "threshold", "period_s", "evaluation_periods", "datapoints_to_alarm"}
    raw = reader.obj(raw_value, path, frozenset(keys))
    topic = raw.get("topic")
    if topic not in ALARM_TOPICS:
        raise reader.fail(f"{path}.topic", f"unknown alarm topic {topic!r} (known topics: {', '.join(ALARM_TOPICS)})")
    period = reader.integer(reader.field(raw, "period_s", path), f"{path}.period_s", 10, ALARM_MAX_WINDOW_S)
    if period not in (10, 30) and period % 60:
        raise reader.fail(f"{path}.period_s", f"{period} must be 10, 30 or a multiple of 60 (CloudWatch periods)")
    evaluation_periods = reader.integer(reader.field(raw, "evaluation_periods", path), f"{path}.evaluation_periods", 1)
    if evaluation_periods * period > ALARM_MAX_WINDOW_S:
        raise reader.fail(
            f"{path}.evaluation_periods",
            f"{evaluation_periods} x period_s {period} = {evaluation_periods * period} s exceeds CloudWatch's "
            f"{ALARM_MAX_WINDOW_S} s (one day) evaluation window",
        )
    datapoints = reader.integer(
        reader.field(raw, "datapoints_to_alarm", path), f"{path}.datapoints_to_alarm", 1, evaluation_periods
    )
    threshold = reader.number(reader.field(raw, "threshold", path), f"{path}.threshold", 0, 1e12)
    return AlarmConfig(topic, threshold, period, evaluation_periods, datapoints)


def _async_storage(reader: _Reader, raw_value: Any) -> AsyncStorageConfig:
    path = "async_storage"
    keys = {
        "object_expiry_days",
        "access_log_expiry_days",
        "queue_visibility_timeout_s",
        "max_receive_count",
        "result_function_timeout_s",
        "result_batch_size",
        "sweep_interval_minutes",
        "invocation_timeout_s",
        "request_ttl_s",
        "result_inline_max_bytes",
    }
    raw = reader.obj(raw_value, path, frozenset(keys))
    result_timeout = reader.integer(
        reader.field(raw, "result_function_timeout_s", path), f"{path}.result_function_timeout_s", 1, 900
    )
    visibility = reader.integer(
        reader.field(raw, "queue_visibility_timeout_s", path), f"{path}.queue_visibility_timeout_s", 1, 43_200
    )
    # AWS's rule for a queue feeding Lambda: at least 6x the function timeout, or batches come back while
    # they are still being processed (and retries pile up).
    if visibility < 6 * result_timeout:
        raise reader.fail(
            f"{path}.queue_visibility_timeout_s",
            f"{visibility} s is under 6 x result_function_timeout_s ({6 * result_timeout} s)",
        )
    return AsyncStorageConfig(
        result_function_timeout_s=result_timeout,
        # SQS event sources take at most 10 messages per batch without a batching window.
        result_batch_size=reader.integer(
            reader.field(raw, "result_batch_size", path), f"{path}.result_batch_size", 1, 10
        ),
        sweep_interval_minutes=reader.integer(
            reader.field(raw, "sweep_interval_minutes", path), f"{path}.sweep_interval_minutes", 1, 1440
        ),
        # SageMaker's own bounds: InvocationTimeoutSeconds 1-3600, RequestTTLSeconds 60-21600.
        invocation_timeout_s=reader.integer(
            reader.field(raw, "invocation_timeout_s", path), f"{path}.invocation_timeout_s", 1, 3600
        ),
        request_ttl_s=reader.integer(reader.field(raw, "request_ttl_s", path), f"{path}.request_ttl_s", 60, 21_600),
        result_inline_max_bytes=reader.integer(
            reader.field(raw, "result_inline_max_bytes", path), f"{path}.result_inline_max_bytes", 1, 5 * 1024 * 1024
        ),
        object_expiry_days=reader.integer(
            reader.field(raw, "object_expiry_days", path), f"{path}.object_expiry_days", 1, 3650
        ),
        access_log_expiry_days=reader.integer(
            reader.field(raw, "access_log_expiry_days", path), f"{path}.access_log_expiry_days", 1, 3650
        ),
        queue_visibility_timeout_s=visibility,
        max_receive_count=reader.integer(
            reader.field(raw, "max_receive_count", path), f"{path}.max_receive_count", 1, 1000
        ),
    )


def _endpoint_map(
    reader: _Reader,
    raw: dict[str, Any],
    *,
    key: str,
    defaults_key: str,
    declared: dict[str, str],
    unknown_message: str,
) -> dict[str, dict[str, Any]]:
    """Per-endpoint knobs: defaults merged with overrides, for exactly the endpoints the model config declares."""
    overrides = reader.obj(raw.get(key, {}), key)
    defaults = reader.obj(raw.get(defaults_key, {}), defaults_key)
    for name in overrides:
        if name not in declared:
            raise reader.fail(f"{key}.{name}", unknown_message.format(name=name))
    merged: dict[str, dict[str, Any]] = {}
    for name in declared:
        override = overrides.get(name, {})
        reader.obj(override, f"{key}.{name}")
        merged[name] = deep_merge(defaults, override)
    return merged


def _alarms(reader: _Reader, raw_value: Any) -> dict[str, AlarmConfig]:
    alarms_raw = reader.obj(raw_value, "alarms")
    unknown_alarms = sorted(set(alarms_raw) - set(ALARM_NAMES))
    if unknown_alarms:
        raise reader.fail(f"alarms.{unknown_alarms[0]}", f"unknown alarm (known alarms: {', '.join(ALARM_NAMES)})")
    missing_alarms = [name for name in ALARM_NAMES if name not in alarms_raw]
    if missing_alarms:
        raise reader.fail(f"alarms.{missing_alarms[0]}", "is required: every alarm needs its topic and window")
    alarms = {name: _alarm(reader, alarms_raw[name], f"alarms.{name}") for name in ALARM_NAMES}
    for name in ("router_pc_low_utilization", "serverless_pc_low_utilization", "api_5xx_rate"):
        if alarms[name].threshold >= 1:
            raise reader.fail(f"alarms.{name}.threshold", f"{alarms[name].threshold} must be a fraction below 1")
    return alarms


def _subscriptions(reader: _Reader, raw_value: Any) -> dict[str, tuple[str, ...]]:
    subscriptions_raw = reader.obj(raw_value, "alarm_subscriptions")
    subscriptions: dict[str, tuple[str, ...]] = dict.fromkeys(ALARM_TOPICS, ())
    for topic, emails in subscriptions_raw.items():
        if topic not in ALARM_TOPICS:
            raise reader.fail(
                f"alarm_subscriptions.{topic}",
                f"unknown alarm topic {topic!r} (known topics: {', '.join(ALARM_TOPICS)})",
            )
        if not isinstance(emails, list):
            raise reader.fail(f"alarm_subscriptions.{topic}", "must be a list of email addresses")
        subscriptions[topic] = tuple(
            reader.string(email, f"alarm_subscriptions.{topic}[{index}]", EMAIL_PATTERN, "an email address")
            for index, email in enumerate(emails)
        )
    return subscriptions


def _powertools_layer(top: _Reader, document: dict[str, Any], region: str, stage: str) -> str:
    """The stage region's Powertools layer, which must match the router's runtime and architecture."""
    layers = top.obj(top.field(document, "powertools_layers", "(top level)"), "powertools_layers")
    if region not in layers:
        raise top.fail(
            "powertools_layers", f"has no Powertools layer ARN for region {region!r} (stage {stage!r} deploys there)"
        )
    layer_arn = top.string(layers[region], f"powertools_layers.{region}")
    layer = POWERTOOLS_LAYER_PATTERN.match(layer_arn)
    if layer is None:
        raise top.fail(f"powertools_layers.{region}", f"{layer_arn!r} is not a Powertools for AWS Lambda v3 layer ARN")
    if layer["region"] != region or layer["python"] != POWERTOOLS_PYTHON or layer["arch"] != POWERTOOLS_ARCH:
        raise top.fail(
            f"powertools_layers.{region}",
            f"{layer_arn!r} must be the {POWERTOOLS_PYTHON}-{POWERTOOLS_ARCH} layer in {region} "
            "(the router runs Python 3.14 on arm64)",
        )
    return layer_arn


def parse_stage_config(raw_document: Any, stage: str, models: ModelsConfig, source: str = "<stages>") -> StageConfig:
    """Check one stage of an already-decoded stage file against the model config; return the typed stage."""
    top = _Reader(source, "")
    document = top.obj(raw_document, "(top level)", frozenset({"$schema", "powertools_layers", "defaults", "stages"}))
    stages = top.obj(top.field(document, "stages", "(top level)"), "stages")
    if stage not in stages:
        raise StageConfigError(f"{source}: stages: unknown stage {stage!r} (known: {', '.join(sorted(stages))})")
    if not STAGE_NAME_PATTERN.match(stage):
        raise StageConfigError(f"{source}: stages.{stage}: stage names are lowercase letters, digits and '-'")
    defaults = top.obj(document.get("defaults", {}), "defaults")
    raw = deep_merge(defaults, top.obj(stages[stage], f"stages.{stage}"))
    reader = _Reader(source, f"stages.{stage}.")
    allowed = {
        "account",
        "region",
        "endpoint_name_prefix",
        "serverless_concurrency_budget",
        "removal_policy",
        "runbook_base_url",
        "router",
        "api",
        "model_defaults",
        "models",
        "serverless_endpoint_defaults",
        "serverless_endpoints",
        "async_endpoint_defaults",
        "async_endpoints",
        "async_storage",
        "alarms",
        "alarm_subscriptions",
        "tags",
    }
    reader.obj(raw, "(stage)", frozenset(allowed))

    account_raw = raw.get("account")
    account = (
        None
        if account_raw is None
        else reader.string(account_raw, "account", ACCOUNT_PATTERN, "a 12-digit AWS account id (or null)")
    )
    region = reader.string(reader.field(raw, "region", "(stage)"), "region", REGION_PATTERN, "an AWS region name")

    layer_arn = _powertools_layer(top, document, region, stage)

    prefix = reader.string(reader.field(raw, "endpoint_name_prefix", "(stage)"), "endpoint_name_prefix")
    router = _router(reader, reader.field(raw, "router", "(stage)"))
    api = _api(reader, reader.field(raw, "api", "(stage)"))
    _check_deadlines(reader, router, api)

    serverless_declared = {
        model.route.serverless_endpoint: model.name for model in models.models if model.route.serverless_endpoint
    }
    async_declared = {model.route.async_endpoint: model.name for model in models.models if model.route.async_endpoint}
    for route_endpoint in (*serverless_declared, *async_declared):
        physical = f"{prefix}{route_endpoint}"
        if not ENDPOINT_NAME_PATTERN.match(physical):
            raise reader.fail(
                "endpoint_name_prefix",
                f"{physical!r} (prefix + endpoint {route_endpoint!r}) is not a valid SageMaker endpoint name "
                "(1-63 letters, digits and '-')",
            )
    duplicates = sorted(set(serverless_declared) & set(async_declared))
    if duplicates:
        raise StageConfigError(
            f"{models.source}: endpoint name {duplicates[0]!r} is used both as a serverless and an async endpoint"
        )

    serverless = {
        name: _serverless_endpoint(reader, merged, f"serverless_endpoints.{name}")
        for name, merged in _endpoint_map(
            reader,
            raw,
            key="serverless_endpoints",
            defaults_key="serverless_endpoint_defaults",
            declared=serverless_declared,
            unknown_message=f"no model in {models.source} routes to a serverless endpoint named {{name!r}}",
        ).items()
    }
    budget = reader.integer(
        reader.field(raw, "serverless_concurrency_budget", "(stage)"), "serverless_concurrency_budget", 1
    )
    total = sum(endpoint.max_concurrency for endpoint in serverless.values())
    if total > budget:
        raise reader.fail(
            "serverless_concurrency_budget",
            f"the serverless endpoints' max_concurrency adds up to {total}, over the region budget of {budget} "
            f"({', '.join(f'{name}={endpoint.max_concurrency}' for name, endpoint in serverless.items())})",
        )
    async_endpoints = {
        name: _async_endpoint(reader, merged, f"async_endpoints.{name}")
        for name, merged in _endpoint_map(
            reader,
            raw,
            key="async_endpoints",
            defaults_key="async_endpoint_defaults",
            declared=async_declared,
            unknown_message=f"no model in {models.source} routes to an async endpoint named {{name!r}}",
        ).items()
    }

    _check_body_limits(models)
    deployed_models = {
        model.name: model.name
        for model in models.models
        if model.route.serverless_endpoint is not None or model.route.async_endpoint is not None
    }
    model_deploys = {
        name: _model_deploy(
            reader,
            merged,
            f"models.{name}",
            region=region,
            serverless_type=SERVERLESS_CPU_INSTANCE_TYPE,
            async_type=_async_instance_type(models, async_endpoints, name),
        )
        for name, merged in _endpoint_map(
            reader,
            raw,
            key="models",
            defaults_key="model_defaults",
            declared=deployed_models,
            unknown_message=f"no model named {{name!r}} in {models.source} deploys to a SageMaker endpoint",
        ).items()
    }
    for model in models.models:
        if model.name in model_deploys and model_deploys[model.name].model_data_url is None and model.artifact is None:
            raise reader.fail(
                f"models.{model.name}.model_data_url",
                f"is required: model {model.name!r} has no artifact in {models.source} to package",
            )

    alarms = _alarms(reader, reader.field(raw, "alarms", "(stage)"))
    async_storage = _async_storage(reader, reader.field(raw, "async_storage", "(stage)"))
    _check_sweep_interval(reader, async_storage, alarms["async_oldest_open_job_age"])
    subscriptions = _subscriptions(reader, raw.get("alarm_subscriptions", {}))

    tags_raw = reader.obj(raw.get("tags", {}), "tags")
    tags = {key: reader.string(value, f"tags.{key}") for key, value in tags_raw.items()}

    return StageConfig(
        name=stage,
        source=source,
        account=account,
        region=region,
        endpoint_name_prefix=prefix,
        serverless_concurrency_budget=budget,
        removal_policy=reader.choice(
            reader.field(raw, "removal_policy", "(stage)"), "removal_policy", REMOVAL_POLICIES
        ),
        powertools_layer_arn=layer_arn,
        runbook_base_url=reader.string(reader.field(raw, "runbook_base_url", "(stage)"), "runbook_base_url").rstrip(
            "/"
        ),
        router=router,
        api=api,
        models=model_deploys,
        serverless_endpoints=serverless,
        async_endpoints=async_endpoints,
        async_storage=async_storage,
        alarms=alarms,
        alarm_subscriptions=subscriptions,
        tags=tags,
    )


def _check_sweep_interval(reader: _Reader, storage: AsyncStorageConfig, alarm: AlarmConfig) -> None:
    """The sweeper reports the oldest open job's age once per run, and that alarm counts a period without a
    datapoint as breaching (a silent sweeper is itself the emergency): a run less often than once per period
    would page between runs, forever."""
    interval_s = storage.sweep_interval_minutes * 60
    if interval_s > alarm.period_s:
        raise reader.fail(
            "async_storage.sweep_interval_minutes",
            f"{storage.sweep_interval_minutes} min is longer than alarms.async_oldest_open_job_age.period_s "
            f"({alarm.period_s} s): the sweeper reports once per run and the alarm treats a period without data as "
            "breaching, so it would page between runs; sweep at least once per period or lengthen the period",
        )


def _check_deadlines(reader: _Reader, router: RouterFunctionConfig, api: ApiConfig) -> None:
    """SageMaker budget < Lambda timeout < API Gateway timeout, so the caller reads our answer, not a 504."""
    lambda_ms = router.timeout_s * 1000
    if router.invoke_budget_ms >= lambda_ms:
        raise reader.fail(
            "router.invoke_budget_ms",
            f"deadline order broken: invoke budget {router.invoke_budget_ms} ms must be below the Lambda timeout "
            f"{lambda_ms} ms (router.timeout_s)",
        )
    if router.invoke_budget_ms + router.response_reserve_ms > lambda_ms:
        raise reader.fail(
            "router.response_reserve_ms",
            f"deadline order broken: invoke budget {router.invoke_budget_ms} ms + response reserve "
            f"{router.response_reserve_ms} ms exceeds the Lambda timeout {lambda_ms} ms",
        )
    if lambda_ms >= api.integration_timeout_ms:
        raise reader.fail(
            "router.timeout_s",
            f"deadline order broken: Lambda timeout {lambda_ms} ms must be below the API Gateway integration "
            f"timeout {api.integration_timeout_ms} ms (api.integration_timeout_ms)",
        )


def _check_body_limits(models: ModelsConfig) -> None:
    """The model config's loader enforces these too; checked again so a programmatic config cannot slip past."""
    for index, model in enumerate(models.models):
        if model.route.sync == "serverless":
            limit, route = SERVERLESS_MAX_BODY_BYTES, "SageMaker serverless (4 MB)"
        else:
            limit, route = LAMBDA_MAX_BODY_BYTES, "Lambda (6 MB)"
        if model.limits.max_body_bytes > limit:
            raise StageConfigError(
                f"{models.source}: models[{index}].limits.max_body_bytes: {model.limits.max_body_bytes} exceeds "
                f"the {route} route limit of {limit}"
            )


def load_stage_config(
    stage: str = DEFAULT_STAGE,
    *,
    models: ModelsConfig | None = None,
    path: str | Path | None = None,
) -> StageConfig:
    """Read ``infra/stages.json`` (or ``path``) and return one checked stage, validated against ``models``."""
    stages_path = Path(path) if path is not None else DEFAULT_STAGES_PATH
    raw = read_json_file(stages_path, StageConfigError)
    return parse_stage_config(raw, stage, models if models is not None else load_models_config(), str(stages_path))
