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

from pathlib import Path
from typing import Any, Final

from functions.config.config_reader import read_json_file
from functions.config.limits import (
    LAMBDA_MAX_BODY_BYTES,
    SERVERLESS_MAX_BODY_BYTES,
    SERVERLESS_REGION_CONCURRENCY_DEFAULT,
)
from functions.config.model_types import ModelsConfig
from functions.config.models import ENDPOINT_NAME_PATTERN, load_models_config
from infra.config.callers import read_caller_policy
from infra.config.capture import read_capture
from infra.config.costing import read_prices
from infra.config.drift import read_drift
from infra.config.endpoints import (
    async_instance_type,
    declared_endpoints,
    deployed_models,
    endpoint_map,
    read_async_endpoint,
    read_model_deploy,
    read_serverless_endpoint,
    sagemaker_versions,
)
from infra.config.formats import (
    ACCOUNT_PATTERN,
    REGION_PATTERN,
    STAGE_NAME_PATTERN,
)
from infra.config.reader import StageReader, deep_merge
from infra.config.sections import (
    read_alarms,
    read_api,
    read_async_storage,
    read_data_perimeter,
    read_powertools_layer,
    read_router,
    read_runbook_base_url,
    read_subscriptions,
)
from infra.config.slo import read_slo
from infra.config.types import (
    DEFAULT_STAGE,
    REMOVAL_POLICY_NAMES,
    SERVERLESS_CPU_INSTANCE_TYPE,
    AlarmConfig,
    ApiConfig,
    AsyncStorageConfig,
    DriftConfig,
    RouterFunctionConfig,
    ServerlessEndpointConfig,
    StageConfig,
    StageConfigError,
)

DEFAULT_STAGES_PATH: Final[Path] = Path(__file__).resolve().parent.parent / "stages.json"


def parse_stage_config(raw_document: Any, stage: str, models: ModelsConfig, source: str = "<stages>") -> StageConfig:
    """Check one stage of an already-decoded stage file against the model config; return the typed stage."""
    top = StageReader(source, "")
    document = top.obj(raw_document, "(top level)", frozenset({"$schema", "powertools_layers", "defaults", "stages"}))
    stages = top.obj(top.field(document, "stages", "(top level)"), "stages")
    if stage not in stages:
        raise StageConfigError(f"{source}: stages: unknown stage {stage!r} (known: {', '.join(sorted(stages))})")
    if not STAGE_NAME_PATTERN.match(stage):
        raise StageConfigError(f"{source}: stages.{stage}: stage names are lowercase letters, digits and '-'")
    defaults = top.obj(document.get("defaults", {}), "defaults")
    raw = deep_merge(defaults, top.obj(stages[stage], f"stages.{stage}"))
    reader = StageReader(source, f"stages.{stage}.")
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
        "data_perimeter",
        "alarms",
        "slo",
        "alarm_subscriptions",
        "tags",
        "caller_policy",
        "capture",
        "prices",
        "drift",
    }
    reader.obj(raw, "(stage)", frozenset(allowed))

    account_raw = raw.get("account")
    account = (
        None
        if account_raw is None
        else reader.string(account_raw, "account", ACCOUNT_PATTERN, "a 12-digit AWS account id (or null)")
    )
    region = reader.string(reader.field(raw, "region", "(stage)"), "region", REGION_PATTERN, "an AWS region name")

    layer_arn = read_powertools_layer(top, document, region, stage)

    prefix = reader.string(reader.field(raw, "endpoint_name_prefix", "(stage)"), "endpoint_name_prefix")
    _check_prefix_isolation(
        reader, stage, prefix=prefix, region=region, account=account, stages=stages, defaults=defaults
    )
    router = read_router(reader, reader.field(raw, "router", "(stage)"))
    api = read_api(reader, reader.field(raw, "api", "(stage)"))
    _check_deadlines(reader, router, api)

    serverless_declared, async_declared = declared_endpoints(models)
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
        name: read_serverless_endpoint(reader, merged, f"serverless_endpoints.{name}")
        for name, merged in endpoint_map(
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
            f"the serverless endpoints' max_concurrency adds up to {total} over all model stacks of the stage, "
            f"over the region budget of {budget} (largest: {_largest_concurrency(serverless)}; "
            f"AWS's default quota is {SERVERLESS_REGION_CONCURRENCY_DEFAULT} in the largest regions)",
        )
    async_endpoints = {
        name: read_async_endpoint(reader, merged, f"async_endpoints.{name}")
        for name, merged in endpoint_map(
            reader,
            raw,
            key="async_endpoints",
            defaults_key="async_endpoint_defaults",
            declared=async_declared,
            unknown_message=f"no model in {models.source} routes to an async endpoint named {{name!r}}",
        ).items()
    }

    _check_body_limits(models)
    model_deploys = {
        name: read_model_deploy(
            reader,
            merged,
            f"models.{name}",
            region=region,
            serverless_type=SERVERLESS_CPU_INSTANCE_TYPE,
            async_type=async_instance_type(models, async_endpoints, name),
            versions=tuple(entry.version for entry in sagemaker_versions(models.by_name[name])),
        )
        for name, merged in endpoint_map(
            reader,
            raw,
            key="models",
            defaults_key="model_defaults",
            declared=deployed_models(models),
            unknown_message=f"no model named {{name!r}} in {models.source} deploys to a SageMaker endpoint",
        ).items()
    }
    for model in models.models:
        if model.name in model_deploys and model_deploys[model.name].model_data_url is None and model.artifact is None:
            raise reader.fail(
                f"models.{model.name}.model_data_url",
                f"is required: model {model.name!r} has no artifact in {models.source} to package",
            )

    alarms = read_alarms(reader, reader.field(raw, "alarms", "(stage)"))
    async_storage = read_async_storage(reader, reader.field(raw, "async_storage", "(stage)"))
    _check_sweep_interval(reader, async_storage, alarms["async_oldest_open_job_age"])
    subscriptions = read_subscriptions(reader, raw.get("alarm_subscriptions", {}))
    drift = read_drift(reader, raw.get("drift", {}))
    _check_drift_alarm(reader, drift, alarms["feature_drift"])

    capture = read_capture(reader, raw.get("capture", {}))
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
            reader.field(raw, "removal_policy", "(stage)"), "removal_policy", REMOVAL_POLICY_NAMES
        ),
        powertools_layer_arn=layer_arn,
        runbook_base_url=read_runbook_base_url(reader, reader.field(raw, "runbook_base_url", "(stage)")),
        router=router,
        api=api,
        models=model_deploys,
        serverless_endpoints=serverless,
        async_endpoints=async_endpoints,
        async_storage=async_storage,
        data_perimeter=read_data_perimeter(reader, reader.field(raw, "data_perimeter", "(stage)"), account),
        alarms=alarms,
        slo=read_slo(reader, reader.field(raw, "slo", "(stage)"), models),
        alarm_subscriptions=subscriptions,
        tags=tags,
        caller_policy=read_caller_policy(reader, raw.get("caller_policy"), models),
        prices=read_prices(source, stage, region, raw.get("prices"), async_endpoints),
        serverless_endpoint_defaults=read_serverless_endpoint(
            reader, raw.get("serverless_endpoint_defaults", {}), "serverless_endpoint_defaults"
        ),
        async_default_instance_type=reader.string(
            reader.field(
                reader.obj(raw.get("async_endpoint_defaults", {}), "async_endpoint_defaults"),
                "instance_type",
                "async_endpoint_defaults",
            ),
            "async_endpoint_defaults.instance_type",
        ),
        capture=capture,
        drift=drift,
    )


def _largest_concurrency(serverless: dict[str, ServerlessEndpointConfig], shown: int = 5) -> str:
    ranked = sorted(serverless.items(), key=lambda item: -item[1].max_concurrency)
    listed = ", ".join(f"{name}={endpoint.max_concurrency}" for name, endpoint in ranked[:shown])
    return listed + (f" and {len(ranked) - shown} more" if len(ranked) > shown else "")


def _check_prefix_isolation(
    reader: StageReader,
    stage: str,
    *,
    prefix: str,
    region: str,
    account: str | None,
    stages: dict[str, Any],
    defaults: dict[str, Any],
) -> None:
    """The router may invoke every endpoint named ``<prefix>*``: that must be this stage's endpoints only.

    The reader refuses an empty prefix (it would reach every endpoint in the account); a prefix that another
    stage's prefix starts with ("prod-" and "prod-eu-") would reach that stage's endpoints, wherever the two
    stages could share an account and region (an unset account is the deploying credentials', so it may be any).
    """
    for other_name, other in stages.items():
        if other_name == stage or not isinstance(other, dict):
            continue
        merged = deep_merge(defaults, other)
        other_prefix = merged.get("endpoint_name_prefix")
        other_account = merged.get("account")
        if merged.get("region") != region or not isinstance(other_prefix, str):
            continue
        if account is not None and other_account is not None and other_account != account:
            continue
        if other_prefix.lower().startswith(prefix.lower()) or prefix.lower().startswith(other_prefix.lower()):
            raise reader.fail(
                "endpoint_name_prefix",
                f"{prefix!r} and stage {other_name!r}'s {other_prefix!r} overlap, so one stage's router could "
                "invoke the other's endpoints; give each stage a prefix no other starts with",
            )


def _check_sweep_interval(reader: StageReader, storage: AsyncStorageConfig, alarm: AlarmConfig) -> None:
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


def _check_drift_alarm(reader: StageReader, drift: DriftConfig, alarm: AlarmConfig) -> None:
    """The ticket watches the largest feature PSI of a run; a threshold other than the job's would page for a
    report that names no drifted feature, or stay quiet over one that does."""
    if alarm.threshold != drift.psi_threshold:
        raise reader.fail(
            "alarms.feature_drift.threshold",
            f"{alarm.threshold:g} differs from drift.psi_threshold {drift.psi_threshold:g}: the ticket and the "
            "report's drifted features would disagree; set both to the same PSI",
        )


def _check_deadlines(reader: StageReader, router: RouterFunctionConfig, api: ApiConfig) -> None:
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
