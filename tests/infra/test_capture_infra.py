"""Capture delivery in both stages: a subscription filter on the router's log group passes only capture lines to a
Firehose stream that gunzips CloudWatch Logs' batches, keeps each message, partitions by model and UTC day and
writes gzip JSON lines under capture/ of a KMS-encrypted, TLS-only, private, access-logged capture bucket whose
objects expire after the stage's capture.retention_days; each role reaches only what it needs. A config where no
model captures deploys none of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.config.loader import load_stage_config
from infra.constructs.capture import DATA_PREFIX, ERROR_PREFIX, FILTER_PATTERN, PARTITION_QUERY
from tests.helpers.synth import Synthesized, ref_id, synthesize


@pytest.fixture(params=["dev", "prod"])
def stage(request: pytest.FixtureRequest, dev: Synthesized, prod: Synthesized) -> Synthesized:
    return {"dev": dev, "prod": prod}[request.param]


def one(synth: Synthesized, resource_type: str) -> tuple[str, dict[str, Any]]:
    found = synth.platform.resources(resource_type)
    capture = {lid: r["Properties"] for lid, r in found.items() if lid.startswith("Capture")}
    [(logical_id, props)] = capture.items()
    return logical_id, props


def statements(synth: Synthesized, role_id: str) -> list[dict[str, Any]]:
    found = []
    for policy in synth.platform.resources("AWS::IAM::Policy").values():
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]:
            found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def getatt(value: Any) -> str:
    return str(value["Fn::GetAtt"][0])


def test_the_filter_passes_only_capture_lines_to_the_stream(stage: Synthesized) -> None:
    _, subscription = one(stage, "AWS::Logs::SubscriptionFilter")
    stream_id, _ = one(stage, "AWS::KinesisFirehose::DeliveryStream")
    assert subscription["FilterPattern"] == FILTER_PATTERN == "{ $.capture = 1 }"
    assert getatt(subscription["DestinationArn"]) == stream_id
    assert ref_id(subscription["LogGroupName"]).startswith("RouterLogGroup")
    # Two filters at most on a log group: the shadow worker's (when a model has a shadow) and this one.
    router_filters = [
        f
        for f in stage.platform.resources("AWS::Logs::SubscriptionFilter").values()
        if ref_id(f["Properties"]["LogGroupName"]).startswith("RouterLogGroup")
    ]
    assert len(router_filters) <= 2


def test_the_stream_unpacks_log_batches_and_partitions_by_model_and_day(stage: Synthesized) -> None:
    _, stream = one(stage, "AWS::KinesisFirehose::DeliveryStream")
    assert stream["DeliveryStreamType"] == "DirectPut"
    assert stream["DeliveryStreamEncryptionConfigurationInput"] == {"KeyType": "AWS_OWNED_CMK"}
    s3 = stream["ExtendedS3DestinationConfiguration"]
    processors = s3["ProcessingConfiguration"]["Processors"]
    assert [p["Type"] for p in processors] == [
        "Decompression",
        "CloudWatchLogProcessing",
        "MetadataExtraction",
        "AppendDelimiterToRecord",
    ]
    parameters = {
        p["Type"]: {q["ParameterName"]: q["ParameterValue"] for q in p.get("Parameters", [])} for p in processors
    }
    assert parameters["Decompression"] == {"CompressionFormat": "GZIP"}
    assert parameters["CloudWatchLogProcessing"] == {"DataMessageExtraction": "true"}
    assert parameters["MetadataExtraction"] == {
        "MetadataExtractionQuery": PARTITION_QUERY,
        "JsonParsingEngine": "JQ-1.6",
    }
    assert PARTITION_QUERY == '{model: .model, date: (.timestamp | floor | strftime("%Y-%m-%d"))}'
    assert s3["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert (
        s3["Prefix"]
        == DATA_PREFIX
        == "capture/model=!{partitionKeyFromQuery:model}/date=!{partitionKeyFromQuery:date}/"
    )
    assert s3["ErrorOutputPrefix"] == ERROR_PREFIX
    assert not ERROR_PREFIX.startswith("capture/"), "failed records never land where the drift job reads"
    assert (s3["CompressionFormat"], s3["FileExtension"]) == ("GZIP", ".jsonl.gz")
    assert s3["BufferingHints"] == {"IntervalInSeconds": 900, "SizeInMBs": 64}
    bucket_id, _ = one(stage, "AWS::S3::Bucket")
    key_id, _ = one(stage, "AWS::KMS::Key")
    assert getatt(s3["BucketARN"]) == bucket_id
    assert getatt(s3["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"]) == key_id
    assert s3["CloudWatchLoggingOptions"]["Enabled"] is True


def test_the_bucket_is_encrypted_private_tls_only_logged_and_expires_captures(stage: Synthesized) -> None:
    bucket_id, bucket = one(stage, "AWS::S3::Bucket")
    key_id, key = one(stage, "AWS::KMS::Key")
    assert key["EnableKeyRotation"] is True
    [rule] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert getatt(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == key_id
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["LoggingConfiguration"]["LogFilePrefix"] == "capture-bucket/"
    retention = load_stage_config(stage.stage).capture.retention_days
    [expiry] = bucket["LifecycleConfiguration"]["Rules"]
    assert (expiry["ExpirationInDays"], expiry["Status"]) == (retention, "Enabled")
    [policy] = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in stage.platform.resources("AWS::S3::BucketPolicy").values()
        if ref_id(p["Properties"]["Bucket"]) == bucket_id
    ]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in policy)


def test_firehose_may_only_write_capture_objects_with_the_capture_key_through_s3(stage: Synthesized) -> None:
    _, stream = one(stage, "AWS::KinesisFirehose::DeliveryStream")
    role_id = getatt(stream["ExtendedS3DestinationConfiguration"]["RoleARN"])
    role = stage.platform.resources("AWS::IAM::Role")[role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}
    granted = statements(stage, role_id)
    actions = sorted(a for s in granted for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"]))
    assert actions == sorted([
        "s3:PutObject", "s3:AbortMultipartUpload", "s3:GetBucketLocation", "s3:ListBucket",
        "s3:ListBucketMultipartUploads", "kms:GenerateDataKey", "kms:Decrypt", "logs:PutLogEvents",
    ])  # fmt: skip
    [objects] = [s for s in granted if "s3:PutObject" in s["Action"]]
    suffixes = sorted(json.dumps(resource["Fn::Join"][1][1:]) for resource in objects["Resource"])
    assert suffixes == ['["/capture-errors/*"]', '["/capture/*"]']
    [kms] = [s for s in granted if "kms:Decrypt" in s["Action"]]
    assert "kms:ViaService" in kms["Condition"]["StringEquals"]
    assert "kms:EncryptionContext:aws:s3:arn" in kms["Condition"]["StringLike"]
    assert all("*" not in json.dumps(s["Resource"]) or "s3:PutObject" in s["Action"] for s in granted)


def test_cloudwatch_logs_may_only_put_records_on_the_capture_stream(stage: Synthesized) -> None:
    stream_id, _ = one(stage, "AWS::KinesisFirehose::DeliveryStream")
    _, subscription = one(stage, "AWS::Logs::SubscriptionFilter")
    role_id = getatt(subscription["RoleArn"])
    role = stage.platform.resources("AWS::IAM::Role")[role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "logs.amazonaws.com"}
    assert "aws:SourceArn" in trust["Condition"]["StringLike"]
    [put] = statements(stage, role_id)
    assert sorted(put["Action"]) == ["firehose:PutRecord", "firehose:PutRecordBatch"]
    assert getatt(put["Resource"]) == stream_id


def test_the_capture_bucket_is_an_output(stage: Synthesized) -> None:
    bucket_id, _ = one(stage, "AWS::S3::Bucket")
    assert ref_id(stage.platform.json["Outputs"]["CaptureBucket"]["Value"]) == bucket_id


def test_without_a_capturing_model_nothing_is_deployed(tmp_path: Path) -> None:
    document = json.loads(DEFAULT_CONFIG_PATH.read_text())
    for model in document["models"]:
        model.pop("capture", None)
    (tmp_path / "models.json").write_text(json.dumps(document))
    synth = synthesize("dev", tmp_path / "out", models=load_models_config(tmp_path / "models.json"))
    assert not synth.platform.resources("AWS::KinesisFirehose::DeliveryStream")
    assert "CaptureBucket" not in synth.platform.json["Outputs"]
    assert not [lid for lid in synth.platform.resources("AWS::S3::Bucket") if lid.startswith("Capture")]
