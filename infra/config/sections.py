"""The stage's function, API, alarm and async-pipeline sections, each checked against AWS's own bounds."""

from __future__ import annotations

from typing import Any

from functions.config.limits import (
    ALARM_MAX_WINDOW_S,
    API_GATEWAY_MAX_TIMEOUT_MS,
    API_GATEWAY_MIN_TIMEOUT_MS,
    ASYNC_MAX_INVOCATION_TIMEOUT_S,
    ASYNC_MAX_REQUEST_TTL_S,
    ASYNC_MIN_REQUEST_TTL_S,
    LAMBDA_MAX_TIMEOUT_S,
    LAMBDA_MEMORY_MAX_MB,
    LAMBDA_MEMORY_MIN_MB,
    LOG_RETENTION_DAYS,
    SQS_LAMBDA_MAX_BATCH_SIZE,
    SQS_LAMBDA_VISIBILITY_FACTOR,
    SQS_MAX_VISIBILITY_TIMEOUT_S,
)
from infra.config.alarm_specs import ALARM_NAMES, SHARE_ALARMS
from infra.config.formats import (
    EMAIL_PATTERN,
    HTTPS_URL_PATTERN,
    IAM_ROLE_ARN_PATTERN,
    POWERTOOLS_ARCH,
    POWERTOOLS_LAYER_PATTERN,
    POWERTOOLS_PYTHON,
)
from infra.config.reader import StageReader
from infra.config.router_capacity import check_snap_start, read_pc_autoscaling
from infra.config.router_deployment import read_router_deployment
from infra.config.types import (
    ALARM_TOPICS,
    AUTH_MODES,
    LOG_LEVEL_NAMES,
    AlarmConfig,
    ApiConfig,
    AsyncStorageConfig,
    DataPerimeterConfig,
    RouterFunctionConfig,
    Throttle,
    UsagePlanConfig,
    WafConfig,
)


def read_throttle(reader: StageReader, raw_value: Any, path: str) -> Throttle:
    raw = reader.obj(raw_value, path, frozenset({"rate_limit", "burst_limit"}))
    rate = reader.number(reader.field(raw, "rate_limit", path), f"{path}.rate_limit", 0, 1_000_000, low_open=True)
    burst = reader.integer(reader.field(raw, "burst_limit", path), f"{path}.burst_limit", 1, 1_000_000)
    return Throttle(rate, burst)


def read_router(reader: StageReader, raw_value: Any) -> RouterFunctionConfig:
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
        "provisioned_concurrency_autoscaling",
        "snap_start",
        "deployment",
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
    autoscaling = read_pc_autoscaling(
        reader,
        raw.get("provisioned_concurrency_autoscaling"),
        f"{path}.provisioned_concurrency_autoscaling",
        provisioned=provisioned,
        reserved=reserved,
    )
    snap_start = reader.boolean(raw.get("snap_start", False), f"{path}.snap_start")
    check_snap_start(reader, snap_start, provisioned=provisioned, autoscaling=autoscaling)
    return RouterFunctionConfig(
        memory_mb=reader.integer(
            reader.field(raw, "memory_mb", path), f"{path}.memory_mb", LAMBDA_MEMORY_MIN_MB, LAMBDA_MEMORY_MAX_MB
        ),
        timeout_s=reader.integer(reader.field(raw, "timeout_s", path), f"{path}.timeout_s", 1, LAMBDA_MAX_TIMEOUT_S),
        reserved_concurrency=reserved,
        provisioned_concurrency=provisioned,
        provisioned_concurrency_autoscaling=autoscaling,
        snap_start=snap_start,
        invoke_budget_ms=reader.integer(reader.field(raw, "invoke_budget_ms", path), f"{path}.invoke_budget_ms", 50),
        response_reserve_ms=reader.integer(
            reader.field(raw, "response_reserve_ms", path), f"{path}.response_reserve_ms", 1
        ),
        log_retention_days=reader.choice(
            reader.field(raw, "log_retention_days", path), f"{path}.log_retention_days", LOG_RETENTION_DAYS
        ),
        log_level=reader.choice(reader.field(raw, "log_level", path), f"{path}.log_level", LOG_LEVEL_NAMES),
        deployment=read_router_deployment(reader, reader.field(raw, "deployment", path), f"{path}.deployment"),
    )


def read_api(reader: StageReader, raw_value: Any) -> ApiConfig:
    path = "api"
    keys = {
        "auth",
        "integration_timeout_ms",
        "throttle",
        "usage_plan",
        "waf",
        "access_log_retention_days",
        "create_account_cloudwatch_role",
        "require_api_key",
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
            API_GATEWAY_MIN_TIMEOUT_MS,
            API_GATEWAY_MAX_TIMEOUT_MS,
        ),
        throttle=read_throttle(reader, reader.field(raw, "throttle", path), f"{path}.throttle"),
        usage_plan=UsagePlanConfig(
            throttle=read_throttle(reader, reader.field(plan_raw, "throttle", plan_path), f"{plan_path}.throttle"),
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
        require_api_key=reader.boolean(reader.field(raw, "require_api_key", path), f"{path}.require_api_key"),
    )


def read_alarm(reader: StageReader, raw_value: Any, path: str) -> AlarmConfig:
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


def read_async_storage(reader: StageReader, raw_value: Any) -> AsyncStorageConfig:
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
        reader.field(raw, "result_function_timeout_s", path),
        f"{path}.result_function_timeout_s",
        1,
        LAMBDA_MAX_TIMEOUT_S,
    )
    visibility = reader.integer(
        reader.field(raw, "queue_visibility_timeout_s", path),
        f"{path}.queue_visibility_timeout_s",
        1,
        SQS_MAX_VISIBILITY_TIMEOUT_S,
    )
    # AWS's rule for a queue feeding Lambda: at least 6x the function timeout, or batches come back while
    # they are still being processed (and retries pile up).
    if visibility < SQS_LAMBDA_VISIBILITY_FACTOR * result_timeout:
        raise reader.fail(
            f"{path}.queue_visibility_timeout_s",
            f"{visibility} s is under {SQS_LAMBDA_VISIBILITY_FACTOR} x result_function_timeout_s "
            f"({SQS_LAMBDA_VISIBILITY_FACTOR * result_timeout} s)",
        )
    return AsyncStorageConfig(
        result_function_timeout_s=result_timeout,
        # SQS event sources take at most 10 messages per batch without a batching window.
        result_batch_size=reader.integer(
            reader.field(raw, "result_batch_size", path), f"{path}.result_batch_size", 1, SQS_LAMBDA_MAX_BATCH_SIZE
        ),
        sweep_interval_minutes=reader.integer(
            reader.field(raw, "sweep_interval_minutes", path), f"{path}.sweep_interval_minutes", 1, 1440
        ),
        invocation_timeout_s=reader.integer(
            reader.field(raw, "invocation_timeout_s", path),
            f"{path}.invocation_timeout_s",
            1,
            ASYNC_MAX_INVOCATION_TIMEOUT_S,
        ),
        request_ttl_s=reader.integer(
            reader.field(raw, "request_ttl_s", path),
            f"{path}.request_ttl_s",
            ASYNC_MIN_REQUEST_TTL_S,
            ASYNC_MAX_REQUEST_TTL_S,
        ),
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


def read_alarms(reader: StageReader, raw_value: Any) -> dict[str, AlarmConfig]:
    alarms_raw = reader.obj(raw_value, "alarms")
    unknown_alarms = sorted(set(alarms_raw) - set(ALARM_NAMES))
    if unknown_alarms:
        raise reader.fail(f"alarms.{unknown_alarms[0]}", f"unknown alarm (known alarms: {', '.join(ALARM_NAMES)})")
    missing_alarms = [name for name in ALARM_NAMES if name not in alarms_raw]
    if missing_alarms:
        raise reader.fail(f"alarms.{missing_alarms[0]}", "is required: every alarm needs its topic and window")
    alarms = {name: read_alarm(reader, alarms_raw[name], f"alarms.{name}") for name in ALARM_NAMES}
    for name in SHARE_ALARMS:
        if alarms[name].threshold >= 1:
            raise reader.fail(f"alarms.{name}.threshold", f"{alarms[name].threshold} must be a fraction below 1")
    return alarms


def read_runbook_base_url(reader: StageReader, raw_value: Any) -> str:
    """Where ``docs/runbooks`` is published, as an https URL each alarm description links to."""
    return reader.string(
        raw_value,
        "runbook_base_url",
        HTTPS_URL_PATTERN,
        "an https URL where docs/runbooks is published, e.g. https://github.com/<org>/<repo>/blob/main/docs/runbooks",
    ).rstrip("/")


def read_subscriptions(reader: StageReader, raw_value: Any) -> dict[str, tuple[str, ...]]:
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


def read_powertools_layer(top: StageReader, document: dict[str, Any], region: str, stage: str) -> str:
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


def read_data_perimeter(reader: StageReader, raw_value: Any, account: str | None) -> DataPerimeterConfig:
    """The break-glass role must be in the stage's account: the perimeter only denies, and another account's
    role would also need an allow in every resource policy to get in."""
    path = "data_perimeter"
    raw = reader.obj(raw_value, path, frozenset({"break_glass_role_arn"}))
    role_raw = reader.field(raw, "break_glass_role_arn", path)
    if role_raw is None:
        return DataPerimeterConfig(break_glass_role_arn=None)
    role = reader.string(
        role_raw,
        f"{path}.break_glass_role_arn",
        IAM_ROLE_ARN_PATTERN,
        "an IAM role ARN (arn:aws:iam::<account>:role/...)",
    )
    match = IAM_ROLE_ARN_PATTERN.match(role)
    assert match is not None  # checked just above
    if account is not None and match["account"] != account:
        raise reader.fail(
            f"{path}.break_glass_role_arn",
            f"role is in account {match['account']}, not the stage's account {account}",
        )
    return DataPerimeterConfig(break_glass_role_arn=role)
