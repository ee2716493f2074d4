"""infra.preflight: the offline listing of a stage's quotas, and the Service Quotas check against a stub."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from functions.config.models import load_models_config
from infra.config.instances import image_variant
from infra.config.loader import load_stage_config
from infra.preflight import layer_prerequisite, main, prerequisites

SERVERLESS = "Maximum total concurrency that can be allocated across all serverless endpoints"
PROVISIONED = "Maximum total provisioned concurrency that can be allocated across all serverless endpoints"


def quota_lines(output: str) -> list[str]:
    return [line.strip() for line in output.splitlines() if line.strip().startswith("[")]


def test_dev_offline_lists_a_cpu_instance_quota_and_the_cpu_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "dev", "--offline"]) == 0
    output = capsys.readouterr().out
    assert quota_lines(output) == [
        "[NOT CHECKED] sagemaker: ml.m5.large for endpoint usage: needs 2 (async: iris-async max 2)",
        f"[NOT CHECKED] sagemaker: {SERVERLESS}: needs 5 (serverless max concurrency: iris 5; stage budget 1000)",
        "[NOT CHECKED] lambda: Concurrent executions: needs 120 "
        "(router reserved 20 (provisioned 0) + 100 Lambda keeps unreserved)",
    ]
    assert "Quotas not checked: --offline" in output
    assert "cdk deploy builds the image assets: docker/serving/Dockerfile)" in output
    assert "cdk bootstrap aws://<account>/us-east-1" in output


def test_prod_offline_lists_the_gpu_quota_and_provisioned_concurrency(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "prod", "--offline"]) == 0
    output = capsys.readouterr().out
    assert quota_lines(output) == [
        "[NOT CHECKED] sagemaker: ml.g5.xlarge for endpoint usage: needs 2 (async: iris-async max 2)",
        f"[NOT CHECKED] sagemaker: {SERVERLESS}: needs 20 (serverless max concurrency: iris 20; stage budget 1000)",
        # pc_autoscaling may raise it to max_capacity 10.
        f"[NOT CHECKED] sagemaker: {PROVISIONED}: needs 10 (serverless: iris 10)",
        "[NOT CHECKED] lambda: Concurrent executions: needs 300 "
        "(router reserved 200 (provisioned 2, autoscaled up to 20) + 100 Lambda keeps unreserved)",
    ]
    assert "docker/serving/Dockerfile, docker/serving-gpu/Dockerfile" in output


def test_without_credentials_it_says_what_it_could_not_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "dev"], quota_client=lambda region: None) == 0
    output = capsys.readouterr().out
    assert "Quotas not checked: no AWS credentials found" in output
    assert all(line.startswith("[NOT CHECKED]") for line in quota_lines(output))


def quotas_page(values: dict[str, float]) -> dict[str, Any]:
    return {"Quotas": [{"QuotaName": name, "Value": value} for name, value in values.items()]}


def checked_run(
    sagemaker: dict[str, float], lambda_: dict[str, float], capsys: pytest.CaptureFixture[str]
) -> tuple[int, list[str]]:
    client = boto3.client(
        "service-quotas", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    stubber = Stubber(client)
    stubber.add_response("list_service_quotas", quotas_page(lambda_), {"ServiceCode": "lambda"})
    stubber.add_response("list_service_quotas", quotas_page(sagemaker), {"ServiceCode": "sagemaker"})
    regions: list[str] = []

    def factory(region: str) -> Any:
        regions.append(region)
        return client

    with stubber:
        code = main(["--stage", "dev"], quota_client=factory)
        stubber.assert_no_pending_responses()
    assert regions == ["us-east-1"]
    return code, quota_lines(capsys.readouterr().out)


def test_quotas_that_suffice_pass(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = checked_run(
        {"ml.m5.large for endpoint usage": 4, SERVERLESS: 10}, {"Concurrent executions": 1000}, capsys
    )
    assert code == 0
    assert [line.split("]")[0] + "]" for line in lines] == ["[OK (quota 4)]", "[OK (quota 10)]", "[OK (quota 1000)]"]


def test_a_quota_too_low_fails_and_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    # A new account's Lambda concurrency can be 10: the router's reservation of 20 cannot be granted.
    code, lines = checked_run(
        {"ml.m5.large for endpoint usage": 4, SERVERLESS: 10}, {"Concurrent executions": 10}, capsys
    )
    assert code == 1
    assert lines[2].startswith("[TOO LOW (quota 10)] lambda: Concurrent executions: needs 120")


def test_an_instance_quota_of_zero_fails(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = checked_run(
        {"ml.m5.large for endpoint usage": 0, SERVERLESS: 10}, {"Concurrent executions": 1000}, capsys
    )
    assert code == 1
    assert (
        lines[0] == "[TOO LOW (quota 0)] sagemaker: ml.m5.large for endpoint usage: needs 2 (async: iris-async max 2)"
    )


def test_a_quota_service_quotas_does_not_list_is_unknown_not_a_failure(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = checked_run({SERVERLESS: 10}, {"Concurrent executions": 1000}, capsys)
    assert code == 0
    assert lines[0].startswith("[UNKNOWN] sagemaker: ml.m5.large for endpoint usage")


def test_an_unknown_stage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--stage", "nope", "--offline"]) == 2
    assert "unknown stage 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("instance_type", "variant"),
    [("ml.g5.xlarge", "gpu"), ("ml.g4dn.xlarge", "gpu"), ("ml.p4d.24xlarge", "gpu"), ("ml.m5.large", "cpu"),
     ("ml.c5.xlarge", "cpu"), ("ml.inf2.xlarge", "cpu")],
)  # fmt: skip
def test_the_image_variant_follows_the_instance_family(instance_type: str, variant: str) -> None:
    assert image_variant(instance_type) == variant


def test_ecr_images_need_no_docker_and_a_break_glass_role_is_listed() -> None:
    models = load_models_config()
    stage = load_stage_config("prod", models=models)
    ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/serving:1"
    stage = replace(
        stage,
        models={name: replace(d, image=ecr, async_image=ecr) for name, d in stage.models.items()},
        data_perimeter=replace(stage.data_perimeter, break_glass_role_arn="arn:aws:iam::123456789012:role/glass"),
    )
    assert prerequisites(stage, models) == [
        "Docker not needed: every image is an ECR URI",
        "CDK bootstrap: cdk bootstrap aws://<account>/us-east-1",
        "break-glass role exists: arn:aws:iam::123456789012:role/glass",
    ]


def test_an_unbuilt_onnxruntime_layer_is_named_and_fails_the_preflight(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "onnxruntime-layer.zip"
    assert main(["--stage", "dev", "--offline"], layer_zip=missing) == 1
    output = capsys.readouterr().out
    assert "MISSING: onnxruntime layer for the in-Lambda models (digits): run `make layers` before synth" in output
    missing.write_bytes(b"PK")
    assert main(["--stage", "dev", "--offline"], layer_zip=missing) == 0
    assert "onnxruntime layer for the in-Lambda models (digits): built (onnxruntime-layer.zip)" in (
        capsys.readouterr().out
    )


def test_no_layer_line_without_an_in_lambda_model(tmp_path: Path) -> None:
    models = load_models_config()
    serverless_only = replace(models, models=tuple(m for m in models.models if m.route.sync != "lambda"))
    assert layer_prerequisite(serverless_only, tmp_path / "absent.zip") is None
