"""The stage config: every rule AWS would enforce minutes into a deploy is rejected at synth, by field."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from functions.config.config_reader import ConfigError
from functions.config.models import load_models_config, parse_models_config
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from infra.config.types import StageConfigError

MODELS = load_models_config()
DOCUMENT: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())


def parse(document: dict[str, Any], stage: str = "prod") -> Any:
    return parse_stage_config(document, stage, MODELS, "stages.json")


def with_change(path: str, value: Any) -> dict[str, Any]:
    """A copy of the stage file with ``value`` at dotted ``path`` (missing objects created)."""
    document = copy.deepcopy(DOCUMENT)
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return document


def test_both_stages_load() -> None:
    dev, prod = load_stage_config("dev"), load_stage_config("prod")
    assert dev.serverless_endpoints["iris"].memory_mb == 1024
    assert prod.serverless_endpoints["iris"].provisioned_concurrency == 2
    assert prod.api.waf.enabled
    assert not dev.api.waf.enabled
    assert dev.endpoint_name("iris") == "dev-iris"
    assert set(prod.async_endpoints) == {"iris-async"}
    assert prod.async_endpoints["iris-async"].instance_type == "ml.g5.xlarge"
    assert (prod.models["iris"].image, prod.models["iris"].async_image) == ("asset", "asset")


def test_an_ecr_image_is_used_for_both_endpoints_unless_async_image_says_otherwise() -> None:
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1.2"
    stage = parse(with_change("stages.prod.models", {"iris": {"image": ecr}}))
    assert (stage.models["iris"].image, stage.models["iris"].async_image) == (ecr, ecr)
    stage = parse(with_change("stages.prod.models", {"iris": {"image": ecr, "async_image": "asset"}}))
    assert stage.models["iris"].async_image == "asset"


INVALID: list[tuple[str, Any, str]] = [
    (
        "stages.prod.serverless_endpoints.iris.memory_mb",
        3000,
        "stages.prod.serverless_endpoints.iris.memory_mb: 3000 is not one of 1024, 2048, 3072, 4096, 5120, 6144",
    ),
    ("stages.prod.serverless_endpoints.iris.memory_mb", 7168, "memory_mb: 7168 is not one of"),
    (
        "stages.prod.serverless_endpoints.iris.max_concurrency",
        0,
        "serverless_endpoints.iris.max_concurrency: 0 is outside 1..200",
    ),
    ("stages.prod.serverless_endpoints.iris.max_concurrency", 201, "max_concurrency: 201 is outside 1..200"),
    (
        "stages.prod.serverless_endpoints.iris.provisioned_concurrency",
        25,
        "provisioned_concurrency: 25 is above max_concurrency 20",
    ),
    (
        "defaults.serverless_concurrency_budget",
        10,
        "serverless_concurrency_budget: the serverless endpoints' max_concurrency adds up to 20 over all model stacks of "
        "the stage, over the region budget of 10 (largest: iris=20",
    ),
    (
        "stages.prod.router.invoke_budget_ms",
        25_000,
        "deadline order broken: invoke budget 25000 ms must be below the Lambda timeout 25000 ms",
    ),
    (
        "stages.prod.router.timeout_s",
        29,
        "deadline order broken: Lambda timeout 29000 ms must be below the API Gateway integration timeout 29000 ms",
    ),
    ("stages.prod.api.integration_timeout_ms", 30_000, "api.integration_timeout_ms: 30000 is outside 50..29000"),
    (
        "stages.prod.router.response_reserve_ms",
        5_500,
        "invoke budget 20000 ms + response reserve 5500 ms exceeds the Lambda timeout 25000 ms",
    ),
    (
        "stages.prod.alarms",
        {"router_errors": {"topic": "pager"}},
        "alarms.router_errors.topic: unknown alarm topic 'pager' (known topics: page, ticket)",
    ),
    ("stages.prod.alarms", {"cpu_high": {"topic": "page"}}, "alarms.cpu_high: unknown alarm"),
    (
        "stages.prod.alarms",
        {"router_errors": {"period_s": 90}},
        "router_errors.period_s: 90 must be 10, 30 or a multiple of 60",
    ),
    (
        "stages.prod.alarms",
        {"router_pc_low_utilization": {"evaluation_periods": 48}},
        "exceeds CloudWatch's 86400 s (one day) evaluation window",
    ),
    (
        "stages.prod.alarms",
        {"router_pc_spillover": {"threshold": 5}},
        "router_pc_spillover.threshold: 5.0 must be a fraction below 1",
    ),
    (
        "stages.prod.alarm_subscriptions",
        {"pages": ["a@example.com"]},
        "alarm_subscriptions.pages: unknown alarm topic 'pages'",
    ),
    (
        "stages.prod.alarm_subscriptions",
        {"page": ["not-an-email"]},
        "alarm_subscriptions.page[0]: 'not-an-email' is not an email address",
    ),
    ("stages.prod.serverless_endpoints.resnet", {"memory_mb": 2048}, "serverless_endpoints.resnet: no model in"),
    ("stages.prod.async_endpoints.iris", {"instance_type": "ml.g5.xlarge"}, "async_endpoints.iris: no model in"),
    (
        "stages.prod.async_endpoints.iris-async",
        {"instance_type": "g5.xlarge"},
        "instance_type: 'g5.xlarge' is not a SageMaker instance type",
    ),
    (
        "stages.prod.router.provisioned_concurrency",
        300,
        "router.provisioned_concurrency: 300 is above reserved_concurrency 200",
    ),
    ("stages.prod.router.memory_mb", 64, "router.memory_mb: 64 is outside 128..10240"),
    ("stages.prod.router.log_retention_days", 10, "router.log_retention_days: 10 is not one of"),
    ("stages.prod.api.auth", "cognito", "api.auth: 'cognito' is not one of iam, api_key"),
    ("stages.prod.region", "eu-north-1", "powertools_layers: has no Powertools layer ARN for region 'eu-north-1'"),
    (
        "powertools_layers.us-east-1",
        "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:7",
        "must be the python314-arm64 layer in us-east-1",
    ),
    (
        "stages.prod.models",
        {"iris": {"image": "docker.io/library/python:3.14"}},
        "models.iris.image: 'docker.io/library/python:3.14' is not 'asset' or an ECR image URI",
    ),
    ("stages.prod.endpoint_name_prefix", "prod_", "is not a valid SageMaker endpoint name"),
    ("stages.prod.endpoint_name_prefix", "", "endpoint_name_prefix: must be a non-empty string"),
    ("stages.prod.endpoint_name_prefix", "dev-x-", "'dev-x-' and stage 'dev''s 'dev-' overlap"),
    ("stages.prod.endpoint_name_prefix", "DEV-", "'DEV-' and stage 'dev''s 'dev-' overlap"),
    (
        "stages.prod.serverless_endpoints.iris.pc_autoscaling",
        {"min_capacity": 1, "max_capacity": 30, "target_utilization": 0.7},
        "pc_autoscaling.max_capacity: 30 is above max_concurrency 20",
    ),
    (
        "stages.prod.serverless_endpoints.iris.pc_autoscaling",
        {"min_capacity": 1, "max_capacity": 10, "target_utilization": 1.5},
        "target_utilization: 1.5 is outside (0, 1]",
    ),
    ("stages.prod.account", "12345", "account: '12345' is not a 12-digit AWS account id"),
    (
        # AWS's rule for a queue feeding Lambda: visibility timeout at least 6x the function's timeout.
        "stages.prod.async_storage.queue_visibility_timeout_s",
        179,
        "async_storage.queue_visibility_timeout_s: 179 s is under 6 x result_function_timeout_s (180 s)",
    ),
    (
        "stages.prod.async_storage.sweep_interval_minutes",
        10,
        "async_storage.sweep_interval_minutes: 10 min is longer than alarms.async_oldest_open_job_age.period_s (300 s)",
    ),
    ("stages.prod.routers", {}, "stages.prod.(stage).routers: unknown field"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), INVALID, ids=[f"{case[0]}={case[1]!r}"[-70:] for case in INVALID]
)
def test_invalid_stage_config_is_rejected_with_its_field(path: str, value: Any, message: str) -> None:
    with pytest.raises(StageConfigError) as raised:
        parse(with_change(path, value))
    assert message in str(raised.value)
    assert str(raised.value).startswith("stages.json: ")


def test_a_sweep_interval_within_the_oldest_job_alarm_period_is_accepted() -> None:
    document = with_change("stages.prod.async_storage.sweep_interval_minutes", 10)
    document["stages"]["prod"]["alarms"] = {"async_oldest_open_job_age": {"period_s": 600}}
    assert parse(document).async_storage.sweep_interval_minutes == 10


def test_unknown_stage_names_the_known_ones() -> None:
    with pytest.raises(StageConfigError, match=r"unknown stage 'staging' \(known: dev, prod\)"):
        parse(DOCUMENT, "staging")


def test_body_limit_above_the_route_limit_is_rejected() -> None:
    raw = json.loads(Path(MODELS.source).read_text())
    raw["models"][0]["limits"]["max_body_bytes"] = 5 * 1024 * 1024
    with pytest.raises(ConfigError, match=r"max_body_bytes.*4194304"):
        parse_models_config(raw, "models.json")


def test_body_limit_above_the_lambda_route_limit_is_rejected() -> None:
    raw = json.loads(Path(MODELS.source).read_text())
    raw["models"][0]["route"] = {"sync": "lambda", "serverless_endpoint": None, "async_endpoint": "iris-async"}
    raw["models"][0]["limits"]["max_body_bytes"] = 6_000_000
    parse_models_config(raw, "models.json")  # exactly Lambda's limit is allowed
    raw["models"][0]["limits"]["max_body_bytes"] = 6_000_001
    with pytest.raises(ConfigError, match=r"max_body_bytes.*6000000"):
        parse_models_config(raw, "models.json")


@pytest.mark.parametrize(("sync", "limit"), [("serverless", 4 * 1024 * 1024), ("lambda", 6_000_000)])
def test_a_programmatic_model_config_past_the_route_limit_is_rejected_at_synth(sync: str, limit: int) -> None:
    # A ModelsConfig built in code skips the file loader; the stage check still stops it.
    model = MODELS.models[0]
    route = dataclasses.replace(model.route, sync=sync, serverless_endpoint="iris" if sync == "serverless" else None)
    oversized = dataclasses.replace(
        model, route=route, limits=dataclasses.replace(model.limits, max_body_bytes=limit + 1)
    )
    models = dataclasses.replace(MODELS, models=(oversized, *MODELS.models[1:]))
    document = copy.deepcopy(DOCUMENT)
    if sync == "lambda":
        for stage in document["stages"].values():
            stage.pop("serverless_endpoints", None)
    with pytest.raises(StageConfigError, match=rf"models\[0\]\.limits\.max_body_bytes: {limit + 1} exceeds"):
        parse_stage_config(document, "prod", models, "stages.json")


def test_a_missing_stage_file_and_bad_json_are_named(tmp_path: Path) -> None:
    with pytest.raises(StageConfigError, match="cannot be read"):
        load_stage_config("dev", path=tmp_path / "absent.json")
    broken = tmp_path / "stages.json"
    broken.write_text('{"stages": ')
    with pytest.raises(StageConfigError, match=r"stages.json: line 1 column 12: invalid JSON"):
        load_stage_config("dev", path=broken)


def test_synth_stops_with_the_config_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "infra.app"],
        capture_output=True,
        text=True,
        env={
            "CDK_CONTEXT_JSON": json.dumps({"stage": "staging"}),
            "PATH": "/usr/bin:/bin",
            "CDK_OUTDIR": str(tmp_path),
        },
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert result.returncode == 1
    assert "config error:" in result.stderr
    assert "unknown stage 'staging'" in result.stderr


def test_a_deep_learning_container_image_is_resolved_offline_or_names_the_extra() -> None:
    document = with_change(
        "stages.prod.models",
        {
            "iris": {
                "image": {"dlc": {"framework": "pytorch", "version": "2.6", "py_version": "py312"}},
                "model_data_url": "s3://artifacts/iris/torchserve.tar.gz",
            }
        },
    )
    if importlib.util.find_spec("sagemaker") is None:
        with pytest.raises(StageConfigError, match=r"models\.iris\.image\.dlc: .*pip install -e '\.\[dlc\]'"):
            parse(document)
        return
    stage = parse(document)
    assert stage.models["iris"].image.endswith("/pytorch-inference:2.6-cpu-py312")
    assert stage.models["iris"].async_image.endswith("/pytorch-inference:2.6-gpu-py312")


@pytest.mark.parametrize(
    ("deploy", "field"),
    [
        ({"image": {"dlc": {"framework": "pytorch", "version": "2.6"}}}, "image"),
        ({"image": "asset", "async_image": {"dlc": {"framework": "pytorch", "version": "2.6"}}}, "async_image"),
    ],
)
def test_a_deep_learning_container_without_its_own_artifact_is_rejected(deploy: dict[str, Any], field: str) -> None:
    # Checked before the SDK is needed: the packed model.onnx + signature.json means nothing to a DLC.
    document = with_change("stages.prod.models", {"iris": deploy})
    with pytest.raises(StageConfigError, match=rf"models\.iris\.{field}: a Deep Learning Container does not read"):
        parse(document)


def test_overlapping_prefixes_are_allowed_where_the_stages_cannot_share_an_account() -> None:
    document = with_change("stages.prod.endpoint_name_prefix", "dev-x-")
    document["stages"]["prod"]["account"] = "111111111111"
    document["stages"]["dev"]["account"] = "222222222222"
    assert parse(document).endpoint_name_prefix == "dev-x-"
    document["stages"]["dev"]["region"] = "eu-west-1"
    document["stages"]["dev"]["account"] = "111111111111"
    assert parse(document).endpoint_name_prefix == "dev-x-"


BREAK_GLASS = "arn:aws:iam::123456789012:role/operators/break-glass"


def test_no_stage_names_a_break_glass_role_by_default() -> None:
    assert load_stage_config("dev").data_perimeter.break_glass_role_arn is None
    assert load_stage_config("prod").data_perimeter.break_glass_role_arn is None


def test_a_break_glass_role_with_a_path_is_taken_as_written() -> None:
    stage = parse(with_change("stages.prod.data_perimeter.break_glass_role_arn", BREAK_GLASS))
    assert stage.data_perimeter.break_glass_role_arn == BREAK_GLASS
    document = with_change("stages.prod.data_perimeter.break_glass_role_arn", BREAK_GLASS)
    document["stages"]["prod"]["account"] = "123456789012"
    assert parse(document).data_perimeter.break_glass_role_arn == BREAK_GLASS


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("arn:aws:iam::123456789012:user/alice", "break_glass_role_arn: 'arn:aws:iam::123456789012:user/alice' is not"),
        ("arn:aws:iam::123456789012:role/", "is not an IAM role ARN"),
        ("arn:aws:iam::*:role/break-glass", "is not an IAM role ARN"),
        ("", "data_perimeter.break_glass_role_arn: must be a non-empty string"),
        (42, "data_perimeter.break_glass_role_arn: must be a non-empty string, got 42"),
    ],
)
def test_a_break_glass_role_must_be_one_role_arn(value: Any, message: str) -> None:
    with pytest.raises(StageConfigError, match=re.escape(message)):
        parse(with_change("stages.prod.data_perimeter.break_glass_role_arn", value))


def test_a_break_glass_role_in_another_account_is_refused() -> None:
    document = with_change("stages.prod.data_perimeter.break_glass_role_arn", BREAK_GLASS)
    document["stages"]["prod"]["account"] = "210987654321"
    with pytest.raises(
        StageConfigError,
        match=re.escape("break_glass_role_arn: role is in account 123456789012, not the stage's account 210987654321"),
    ):
        parse(document)


def test_the_data_perimeter_takes_no_other_field() -> None:
    with pytest.raises(StageConfigError, match=re.escape("stages.prod.data_perimeter.admins: unknown field")):
        parse(with_change("stages.prod.data_perimeter.admins", ["arn:aws:iam::123456789012:role/x"]))
    document = copy.deepcopy(DOCUMENT)
    del document["defaults"]["data_perimeter"]
    with pytest.raises(StageConfigError, match=re.escape("data_perimeter: is required")):
        parse(document)


CALLER_POLICY_INVALID: list[tuple[Any, str]] = [
    ({"principal": "arn:aws:iam::123456789012:role/ranker"}, "stages.prod.caller_policy: must be a list"),
    ([], "stages.prod.caller_policy: an empty policy would deny every caller; use null"),
    (
        [{"principal": "arn:aws:iam::123456789012:role/ranker", "models": {"irsi": ["sync"]}}],
        "stages.prod.caller_policy[0].models.irsi: no model named 'irsi' is configured",
    ),
    (
        [{"principal": "arn:aws:iam::123456789012:role/ops/ranker", "models": {"iris": ["sync"]}}],
        "stages.prod.caller_policy[0].principal: 'arn:aws:iam::123456789012:role/ops/ranker': name a role without",
    ),
    ([{"api_key_id": "k1", "models": {"iris": ["batch"]}}], "stages.prod.caller_policy[0].models.iris: ['batch']"),
    (
        [
            {"principal": f"arn:aws:iam::123456789012:role/team-{index:04d}", "models": {"*": ["sync"]}}
            for index in range(40)
        ],
        "stages.prod.caller_policy: takes 3254 bytes as the router's CALLER_POLICY variable, over its 2048",
    ),
]


@pytest.mark.parametrize(
    ("policy", "message"), CALLER_POLICY_INVALID, ids=[case[1].split(": ", 1)[1][:40] for case in CALLER_POLICY_INVALID]
)
def test_an_invalid_caller_policy_is_rejected_with_its_field(policy: Any, message: str) -> None:
    with pytest.raises(StageConfigError) as raised:
        parse(with_change("stages.prod.caller_policy", policy))
    assert str(raised.value).startswith(f"stages.json: {message}")


def test_a_caller_policy_is_read_and_by_default_there_is_none() -> None:
    assert load_stage_config("prod").caller_policy is None
    assert load_stage_config("dev").caller_policy is None
    rules = [{"principal": "arn:aws:iam::123456789012:role/ranker-*", "models": {"iris": ["sync", "async"]}}]
    policy = parse(with_change("stages.prod.caller_policy", rules)).caller_policy
    assert policy is not None
    assert json.loads(policy.to_env()) == rules


def test_require_api_key_is_off_by_default_and_must_be_a_boolean() -> None:
    assert not load_stage_config("prod").api.require_api_key
    assert parse(with_change("stages.prod.api.require_api_key", True)).api.require_api_key
    with pytest.raises(StageConfigError, match=r"stages.prod.api.require_api_key: must be true or false, got 'yes'"):
        parse(with_change("stages.prod.api.require_api_key", "yes"))
