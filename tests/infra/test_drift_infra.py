"""The drift job's infra: its function, schedule, grants, baselines layer and failure path, built in a small stack
around a stand-in capture bucket (cdk-nag runs at synth); each capturing model's ticket in its own stack (in the
platform for a model without one), in the synthesized stages; and the stage's ``drift`` section."""

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
from aws_cdk.assertions import Template

from functions.config.drift_contract import (
    BASELINES_DIR_VARIABLE,
    CAPTURE_BUCKET_VARIABLE,
    DRIFT_SERVICE,
    DRIFT_SETTINGS_VARIABLE,
    MAX_FEATURE_PSI_METRIC,
)
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.app import new_app
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config, parse_stage_config
from infra.config.types import DriftConfig, StageConfigError
from infra.constructs.drift import (
    BASELINES_MAX_BYTES,
    HANDLER,
    DriftJob,
    DriftSetupError,
    capture_baselines,
    stage_baselines,
)
from infra.guardrails import add_guardrails
from tests.helpers.synth import Synthesized, SynthesizedStack, platform_ref_id, ref_id, synthesize

ROOT = Path(__file__).resolve().parents[2]
IRIS_BASELINE = ROOT / "layers" / "models" / "iris" / "baseline.json"
DIGITS_BASELINE = ROOT / "layers" / "models" / "digits" / "baseline.json"
POWERTOOLS = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python314-arm64:38"


def synth_job(tmp_path: Path, drift: DriftConfig, *, encrypted: bool = True) -> dict[str, Any]:
    """The job's stack template, with the assembly's directory under ``"Outdir"``."""
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
    baselines = capture_baselines(load_models_config().models)
    DriftJob(
        stack,
        "Drift",
        baselines=baselines,
        capture_bucket=bucket,
        capture_key=key,
        drift=drift,
        code=lambda_.Code.from_inline("def lambda_handler(event, context): pass"),
        powertools_layer_arn=POWERTOOLS,
        log_retention=logs.RetentionDays.ONE_MONTH,
        log_level="INFO",
        log_removal_policy=stage_removal(),
    )
    app.synth()  # cdk-nag: an unacknowledged finding raises here
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return {**template, "Outdir": str(tmp_path / "out")}


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


def staged_asset(outdir: Path, layer: dict[str, Any]) -> Path:
    """The directory CDK zips into a layer's asset (``asset.<hash>`` for S3 key ``<hash>.zip``)."""
    return outdir / f"asset.{layer['Properties']['Content']['S3Key'].removesuffix('.zip')}"


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


def test_every_capturing_models_baseline_ships_in_one_layer_the_job_reads_from_a_directory(
    template: dict[str, Any],
) -> None:
    _, props = job(template)
    assert [m.name for m in load_models_config().models if m.capture is not None] == ["iris"]
    [(layer_id, layer)] = of_type(template, "AWS::Lambda::LayerVersion").items()
    assert {"Ref": layer_id} in props["Layers"]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    staged = staged_asset(Path(template["Outdir"]), layer)
    assert sorted(str(p.relative_to(staged)) for p in staged.rglob("*") if p.is_file()) == ["baselines/iris.json"]
    assert (staged / "baselines" / "iris.json").read_bytes() == IRIS_BASELINE.read_bytes()
    variables = props["Environment"]["Variables"]
    assert variables[BASELINES_DIR_VARIABLE] == "/opt/baselines"
    assert "DRIFT_BASELINES" not in variables


def test_the_job_may_read_nothing_but_captures(template: dict[str, Any]) -> None:
    _, props = job(template)
    reads = [r for s in statements(template, props) if "s3:GetObject" in json.dumps(s["Action"]) for r in resources(s)]
    assert reads == [{"Fn::Join": ["", [{"Fn::GetAtt": ["Capture4F9379E3", "Arn"]}, "/capture/*"]]}]


def test_the_baselines_layer_holds_two_hundred_digits_sized_baselines(tmp_path: Path) -> None:
    # 64 inputs and 10 probabilities: the largest baseline shipped here, 370 KB; 200 of them take 74 MB.
    assert 200 * DIGITS_BASELINE.stat().st_size < BASELINES_MAX_BYTES
    staged = stage_baselines({"iris": IRIS_BASELINE, "digits": DIGITS_BASELINE}, tmp_path)
    assert sorted(p.name for p in (staged / "baselines").iterdir()) == ["digits.json", "iris.json"]


def test_baselines_over_the_layers_budget_are_refused_naming_the_largest(tmp_path: Path) -> None:
    baselines = {"iris": IRIS_BASELINE, "digits": DIGITS_BASELINE}
    with pytest.raises(DriftSetupError, match=r"2 capturing models take .* over the 100,000 .* largest: digits"):
        stage_baselines(baselines, tmp_path, max_bytes=100_000)
    assert not (tmp_path / "baselines").exists()


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


def test_the_job_itself_has_no_alarm(template: dict[str, Any]) -> None:
    assert of_type(template, "AWS::CloudWatch::Alarm") == {}


def drift_tickets(stack: SynthesizedStack) -> list[dict[str, Any]]:
    return [
        alarm["Properties"]
        for alarm in stack.resources("AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == MAX_FEATURE_PSI_METRIC
    ]


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_capturing_models_drift_ticket_lives_in_its_own_stack(
    stage: str, dev: Synthesized, prod: Synthesized
) -> None:
    synth = prod if stage == "prod" else dev
    assert drift_tickets(synth.platform) == []
    iris = synth.models["iris"]
    [alarm] = drift_tickets(iris)
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": DRIFT_SERVICE, "model": "iris"}
    assert (alarm["Statistic"], alarm["Threshold"], alarm["ComparisonOperator"]) == (
        "Maximum",
        0.2,
        "GreaterThanThreshold",
    )
    assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["TreatMissingData"]) == (86400, 1, "notBreaching")
    description = json.dumps(alarm["AlarmDescription"])
    assert "model iris" in description
    assert "/feature-drift.md" in description
    ticket = platform_ref_id(synth, iris, alarm["AlarmActions"][0])
    assert synth.platform.json["Resources"][ticket]["Properties"]["DisplayName"] == "Inference router ticket"
    assert [d for s in synth.all for d in drift_tickets(s)] == [alarm]


def test_a_capturing_model_without_a_stack_has_its_drift_ticket_in_the_platform(tmp_path: Path) -> None:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [digits] = [m for m in document["models"] if m["name"] == "digits"]
    assert digits["route"]["sync"] == "lambda"
    digits["capture"] = {"sample_rate": 1, "inputs": ["pixels"]}
    models_path = tmp_path / "models.json"
    models_path.write_text(json.dumps(document))
    synth = synthesize("dev", tmp_path / "out", models=load_models_config(models_path))
    assert "digits" not in synth.models
    [alarm] = drift_tickets(synth.platform)
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": DRIFT_SERVICE, "model": "digits"}
    assert ref_id(alarm["AlarmActions"][0]) in synth.platform.json["Resources"]
    [iris_ticket] = drift_tickets(synth.models["iris"])
    assert {d["Name"]: d["Value"] for d in iris_ticket["Dimensions"]}["model"] == "iris"
    [layer] = [
        layer
        for layer in synth.platform.resources("AWS::Lambda::LayerVersion").values()
        if "drift baseline" in layer["Properties"]["Description"]
    ]
    staged = staged_asset(synth.outdir, layer) / "baselines"
    assert sorted(p.name for p in staged.iterdir()) == ["digits.json", "iris.json"]


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
