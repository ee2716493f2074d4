"""The drift job's infra: its function, schedule, grants, baseline assets, failure path and ticket, built in a
small stack around a stand-in capture bucket (cdk-nag runs at synth), and the stage's ``drift`` section."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from functions.config.drift_contract import (
    BASELINES_VARIABLE,
    CAPTURE_BUCKET_VARIABLE,
    DRIFT_SERVICE,
    DRIFT_SETTINGS_VARIABLE,
    MAX_FEATURE_PSI_METRIC,
)
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.app import new_app
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from infra.config.types import DriftConfig, StageConfigError
from infra.constructs.drift import HANDLER, DriftJob, DriftSetupError, capture_baselines
from infra.constructs.on_call_alarm import OnCallAlarms
from infra.guardrails import add_guardrails
from tests.helpers.synth import ref_id

ROOT = Path(__file__).resolve().parents[2]
POWERTOOLS = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"
RUNBOOKS = "https://example.com/runbooks"


def synth_job(tmp_path: Path, drift: DriftConfig, *, encrypted: bool = True) -> dict[str, Any]:
    app = new_app(outdir=str(tmp_path / "out"))
    add_guardrails(app)
    stack = Stack(app, "DriftTest", env={"account": "111111111111", "region": "us-east-1"})
    key = kms.Key(stack, "CaptureKey", enable_key_rotation=True) if encrypted else None
    bucket = s3.Bucket(
        stack,
        "Capture",
        encryption_key=key,
        encryption=s3.BucketEncryption.KMS if key else s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        server_access_logs_prefix="access/",
    )
    topic = sns.Topic(stack, "Ticket", master_key=kms.Key(stack, "TopicKey", enable_key_rotation=True))
    stage = load_stage_config("prod")
    on_call = OnCallAlarms(configs=stage.alarms, runbook_base_url=RUNBOOKS, topic=lambda _: topic)
    baselines = capture_baselines(load_models_config().models)
    DriftJob(
        stack,
        "Drift",
        baselines=baselines,
        capture_bucket=bucket,
        capture_key=key,
        drift=drift,
        on_call=on_call,
        code=lambda_.Code.from_inline("def lambda_handler(event, context): pass"),
        powertools_layer_arn=POWERTOOLS,
        log_retention=logs.RetentionDays.ONE_MONTH,
        log_level="INFO",
        log_removal_policy=stage_removal(),
    )
    app.synth()  # cdk-nag: an unacknowledged finding raises here
    return Template.from_stack(stack).to_json()


def stage_removal() -> Any:
    from aws_cdk import RemovalPolicy

    return RemovalPolicy.DESTROY


def of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


DEFAULT_DRIFT = DriftConfig(schedule="rate(1 day)", psi_threshold=0.2, ks_p_value=0.01, window_days=1)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return synth_job(tmp_path_factory.mktemp("drift"), DEFAULT_DRIFT)


def job(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    [(logical_id, function)] = [
        (k, r) for k, r in of_type(template, "AWS::Lambda::Function").items() if r["Properties"]["Handler"] == HANDLER
    ]
    return logical_id, function["Properties"]


def statements(template: dict[str, Any], function_props: dict[str, Any]) -> list[dict[str, Any]]:
    role_id = ref_id(function_props["Role"])
    return [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def test_the_job_runs_on_graviton_python_314_with_the_stage_settings(template: dict[str, Any]) -> None:
    _, props = job(template)
    assert (props["Runtime"], props["Architectures"]) == ("python3.14", ["arm64"])
    assert props["ReservedConcurrentExecutions"] == 1
    variables = props["Environment"]["Variables"]
    assert json.loads(variables[DRIFT_SETTINGS_VARIABLE]) == {"psi": 0.2, "ks_p_value": 0.01, "window_days": 1}
    assert variables["POWERTOOLS_SERVICE_NAME"] == DRIFT_SERVICE
    assert ref_id(variables[CAPTURE_BUCKET_VARIABLE]).startswith("Capture")


def resources(statement: dict[str, Any]) -> list[Any]:
    found = statement["Resource"]
    return found if isinstance(found, list) else [found]


def test_each_capturing_model_ships_its_baseline_as_an_asset_the_job_reads_object_by_object(
    template: dict[str, Any],
) -> None:
    _, props = job(template)
    uris = json.loads(props["Environment"]["Variables"][BASELINES_VARIABLE])
    assert [m.name for m in load_models_config().models if m.capture is not None] == ["iris"]
    assert list(uris) == ["iris"]
    assert uris["iris"].startswith("s3://cdk-")
    assert uris["iris"].endswith(".json")
    bucket, key = uris["iris"].removeprefix("s3://").split("/", 1)
    reads = [r for s in statements(template, props) if s["Action"] == "s3:GetObject" for r in resources(s)]
    assert f"arn:aws:s3:::{bucket}/{key}" in reads
    [asset] = [r for r in reads if isinstance(r, str)]
    assert "*" not in asset


def test_the_job_reads_captures_writes_reports_and_nothing_else_of_the_bucket(template: dict[str, Any]) -> None:
    _, props = job(template)
    found = statements(template, props)
    on_bucket = {
        (json.dumps(s["Action"]), json.dumps(r), json.dumps(s.get("Condition")))
        for s in found
        for r in resources(s)
        if "Capture4" in json.dumps(r)
    }
    bucket_arn = json.dumps({"Fn::GetAtt": ["Capture4F9379E3", "Arn"]})

    def objects(prefix: str) -> str:
        return json.dumps({"Fn::Join": ["", [{"Fn::GetAtt": ["Capture4F9379E3", "Arn"]}, prefix]]})

    assert on_bucket == {
        ('"s3:ListBucket"', bucket_arn, json.dumps({"StringLike": {"s3:prefix": ["capture/*"]}})),
        ('"s3:GetObject"', objects("/capture/*"), "null"),
        ('"s3:PutObject"', objects("/reports/drift/*"), "null"),
    }
    [kms_grant] = [s for s in found if "kms:Decrypt" in json.dumps(s["Action"])]
    assert kms_grant["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert ref_id(kms_grant["Resource"]).startswith("CaptureKey")


def test_without_a_bucket_key_no_kms_grant(tmp_path: Path) -> None:
    template = synth_job(tmp_path, DEFAULT_DRIFT, encrypted=False)
    _, props = job(template)
    assert not [s for s in statements(template, props) if "kms:" in json.dumps(s["Action"])]


def test_the_schedule_runs_the_job_and_a_failed_run_lands_in_the_failure_queue(template: dict[str, Any]) -> None:
    logical_id, _ = job(template)
    [rule] = of_type(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "rate(1 day)"
    [target] = rule["Properties"]["Targets"]
    assert ref_id(target["Arn"]) == logical_id
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 2
    [invoke_config] = of_type(template, "AWS::Lambda::EventInvokeConfig").values()
    destination = invoke_config["Properties"]["DestinationConfig"]["OnFailure"]["Destination"]
    assert ref_id(destination) in of_type(template, "AWS::SQS::Queue")
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 2


def test_a_cron_schedule_and_thresholds_reach_the_template(tmp_path: Path) -> None:
    drift = DriftConfig(schedule="cron(0 6 * * ? *)", psi_threshold=0.3, ks_p_value=0.05, window_days=7)
    template = synth_job(tmp_path, drift)
    [rule] = of_type(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == "cron(0 6 * * ? *)"
    settings = json.loads(job(template)[1]["Environment"]["Variables"][DRIFT_SETTINGS_VARIABLE])
    assert settings == {"psi": 0.3, "ks_p_value": 0.05, "window_days": 7}


def test_one_feature_drift_ticket_per_capturing_model(template: dict[str, Any]) -> None:
    [alarm] = [a["Properties"] for a in of_type(template, "AWS::CloudWatch::Alarm").values()]
    assert alarm["MetricName"] == MAX_FEATURE_PSI_METRIC
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": DRIFT_SERVICE, "model": "iris"}
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        0.2,
        "GreaterThanThreshold",
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (86400, 1, "notBreaching")
    assert f"{RUNBOOKS}/feature-drift.md" in alarm["AlarmDescription"]


def test_a_capturing_model_without_a_baseline_is_refused(tmp_path: Path) -> None:
    [iris] = [m for m in load_models_config().models if m.name == "iris"]
    with pytest.raises(DriftSetupError, match=r"iris.*python -m ops baseline --model iris"):
        capture_baselines([iris], repo_root=tmp_path)
    from dataclasses import replace

    with pytest.raises(DriftSetupError, match="no artifact"):
        capture_baselines([replace(iris, artifact=None)])
    assert capture_baselines([replace(iris, capture=None)]) == {}


# The stage's drift section.


def stage_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DEFAULT_STAGES_PATH.read_text())
    return document


def parse(document: dict[str, Any], stage: str = "dev") -> Any:
    return parse_stage_config(document, stage, load_models_config(DEFAULT_CONFIG_PATH), "stages.json")


def test_both_stages_default_to_a_daily_run_over_yesterday() -> None:
    for stage in ("dev", "prod"):
        assert load_stage_config(stage).drift == DEFAULT_DRIFT


def test_an_absent_drift_section_takes_the_defaults() -> None:
    document = stage_document()
    del document["defaults"]["drift"]
    assert parse(document).drift == DEFAULT_DRIFT


@pytest.mark.parametrize(
    ("drift", "field", "message"),
    [
        ({"schedule": "daily"}, "drift.schedule", "not an EventBridge schedule"),
        ({"schedule": "rate(1 days)"}, "drift.schedule", "singular unit for 1"),
        ({"schedule": "rate(2 day)"}, "drift.schedule", "singular unit for 1"),
        ({"schedule": "rate(0 days)"}, "drift.schedule", "not an EventBridge schedule"),
        ({"schedule": "cron(0 6 * *)"}, "drift.schedule", "not an EventBridge schedule"),
        ({"schedule": 5}, "drift.schedule", "non-empty string"),
        ({"psi_threshold": 0}, "drift.psi_threshold", "outside"),
        ({"psi_threshold": "high"}, "drift.psi_threshold", "finite number"),
        ({"ks_p_value": 0.9}, "drift.ks_p_value", "outside"),
        ({"ks_p_value": 0}, "drift.ks_p_value", "outside"),
        ({"window_days": 0}, "drift.window_days", "outside"),
        ({"window_days": 32}, "drift.window_days", "outside"),
        ({"window_days": 1.5}, "drift.window_days", "whole number"),
        ({"baseline": "x"}, "drift.baseline", "unknown field"),
    ],
)
def test_a_wrong_drift_value_is_refused_naming_its_field(drift: dict[str, Any], field: str, message: str) -> None:
    document = stage_document()
    document["stages"]["dev"]["drift"] = drift
    with pytest.raises(StageConfigError, match=rf"stages\.dev\.{field}: .*{message}"):
        parse(document)


def test_a_stage_may_change_the_schedule_and_window() -> None:
    document = stage_document()
    document["stages"]["prod"]["drift"] = {"schedule": "rate(12 hours)", "window_days": 3}
    drift = parse(document, "prod").drift
    assert (drift.schedule, drift.window_days, drift.psi_threshold) == ("rate(12 hours)", 3, 0.2)


def test_the_ticket_threshold_must_be_the_jobs_psi_threshold() -> None:
    document = stage_document()
    document["stages"]["dev"]["drift"] = {"psi_threshold": 0.25}
    with pytest.raises(StageConfigError, match=r"alarms\.feature_drift\.threshold: 0\.2 differs from drift"):
        parse(document)
    both = copy.deepcopy(document)
    both["stages"]["dev"]["alarms"] = {"feature_drift": {"threshold": 0.25}}
    assert parse(both).drift.psi_threshold == 0.25
