"""Async storage (queue, dead-letter queue, bucket, topics, tables) and the SageMaker endpoints."""

from __future__ import annotations

import json
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from functions.config.async_contract import JOB_STATUS_INDEX, JOB_TABLE_PARTITION_KEY, JOB_TTL_ATTRIBUTE
from functions.config.models import load_models_config
from infra.app import new_app
from infra.config.loader import DEFAULT_STAGES_PATH, load_stage_config
from infra.stacks.model import ModelStack
from infra.stacks.platform import PlatformStack
from local.model_variants import write_models_with_variants, write_models_without_in_lambda
from tests.helpers.synth import Synthesized, platform_ref_id, ref_id, synthesize

ROOT = Path(__file__).resolve().parents[2]


def by_id(synth: Synthesized, logical_id: str) -> dict[str, Any]:
    resource: dict[str, Any] = synth.json["Resources"][logical_id]["Properties"]
    return resource


def model_assets(synth: Synthesized, model: str) -> dict[str, Any]:
    """The asset manifest of one model's stack (its images and model archive)."""
    path = synth.models[model].template_path.with_suffix("").with_suffix(".assets.json")
    document: dict[str, Any] = json.loads(path.read_text())
    return document


def queues(synth: Synthesized) -> tuple[dict[str, Any], str, dict[str, Any]]:
    found = synth.resources("AWS::SQS::Queue")
    [(_queue_id, queue)] = [(i, r["Properties"]) for i, r in found.items() if "RedrivePolicy" in r["Properties"]]
    dlq_id = ref_id(queue["RedrivePolicy"]["deadLetterTargetArn"])
    return queue, dlq_id, found[dlq_id]["Properties"]


def test_result_queue_redrives_to_an_encrypted_dead_letter_queue(dev: Synthesized) -> None:
    queue, _, dlq = queues(dev)
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    for props in (queue, dlq):
        assert "KmsMasterKeyId" in props


def test_queues_refuse_plain_http(dev: Synthesized) -> None:
    policies = dev.resources("AWS::SQS::QueuePolicy").values()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        )
    # The result queue, its dead-letter queue and the drift job's failure queue (iris captures).
    assert len(list(policies)) == 3


def test_both_async_topics_feed_the_result_queue(dev: Synthesized) -> None:
    queue_id = next(i for i, r in dev.resources("AWS::SQS::Queue").items() if "RedrivePolicy" in r["Properties"])
    subscriptions = [r["Properties"] for r in dev.resources("AWS::SNS::Subscription").values()]
    assert len(subscriptions) == 2
    for subscription in subscriptions:
        assert subscription["Protocol"] == "sqs"
        assert ref_id(subscription["Endpoint"]) == queue_id
        assert subscription["RawMessageDelivery"] is True
        assert "RedrivePolicy" in subscription  # SNS delivery failures land in the dead-letter queue too


def test_async_bucket_is_encrypted_private_logged_and_expiring(dev: Synthesized) -> None:
    buckets = [r["Properties"] for r in dev.resources("AWS::S3::Bucket").values()]
    [data] = [b for b in buckets if b.get("LoggingConfiguration", {}).get("LogFilePrefix") == "async-bucket/"]
    encryption = data["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert encryption["SSEAlgorithm"] == "aws:kms"
    assert data["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert data["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 7
    bucket_policies = dev.resources("AWS::S3::BucketPolicy")
    assert bucket_policies, "no bucket policy in the dev template"
    for policy in bucket_policies.values():
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and "aws:SecureTransport" in str(s.get("Condition")) for s in statements)


def test_job_table_has_pitr_ttl_and_the_sweeper_index(dev: Synthesized) -> None:
    tables = [r["Properties"] for r in dev.resources("AWS::DynamoDB::Table").values()]
    [jobs] = [t for t in tables if t["KeySchema"][0]["AttributeName"] == JOB_TABLE_PARTITION_KEY]
    assert jobs["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert jobs["TimeToLiveSpecification"] == {"AttributeName": JOB_TTL_ATTRIBUTE, "Enabled": True}
    assert jobs["SSESpecification"]["SSEType"] == "KMS"
    assert [index["IndexName"] for index in jobs["GlobalSecondaryIndexes"]] == [JOB_STATUS_INDEX]


def endpoint_configs(synth: Synthesized) -> dict[str, dict[str, Any]]:
    return {i: r["Properties"] for i, r in synth.resources("AWS::SageMaker::EndpointConfig").items()}


def test_serverless_endpoint_config_follows_the_stage(dev: Synthesized, prod: Synthesized) -> None:
    for synth, memory, max_concurrency, provisioned in ((dev, 1024, 5, None), (prod, 2048, 20, 2)):
        [config] = [c for c in endpoint_configs(synth).values() if "ServerlessConfig" in c["ProductionVariants"][0]]
        serverless = config["ProductionVariants"][0]["ServerlessConfig"]
        assert serverless["MemorySizeInMB"] == memory
        assert serverless["MaxConcurrency"] == max_concurrency
        assert serverless.get("ProvisionedConcurrency") == provisioned


def test_no_endpoint_config_or_model_has_a_hard_coded_name(prod: Synthesized) -> None:
    # Every ServerlessConfig change replaces the endpoint config; a fixed name would make that replacement fail.
    configs = endpoint_configs(prod)
    models = prod.resources("AWS::SageMaker::Model")
    assert configs, "no endpoint config in the prod template"
    assert models, "no SageMaker model in the prod template"
    for config in configs.values():
        assert "EndpointConfigName" not in config
    for model in models.values():
        assert "ModelName" not in model["Properties"]


def test_endpoints_are_named_as_the_router_composes_them(prod: Synthesized) -> None:
    names = sorted(r["Properties"]["EndpointName"] for r in prod.resources("AWS::SageMaker::Endpoint").values())
    assert names == ["prod-iris", "prod-iris-async"]


def async_endpoint_config(synth: Synthesized) -> dict[str, Any]:
    [config] = [c for c in endpoint_configs(synth).values() if "AsyncInferenceConfig" in c]
    return config


def test_async_endpoint_runs_on_a_cpu_in_dev_and_notifies_both_topics(dev: Synthesized) -> None:
    config = async_endpoint_config(dev)
    variant = config["ProductionVariants"][0]
    # A new account's GPU endpoint quota is often 0: dev's first deploy must not need one.
    assert variant["InstanceType"] == "ml.m5.large"
    output = config["AsyncInferenceConfig"]["OutputConfig"]
    assert "S3OutputPath" in output
    assert "S3FailurePath" in output
    assert "KmsKeyId" in output
    notification = output["NotificationConfig"]
    topics = {i for i, r in dev.resources("AWS::SNS::Topic").items() if "DisplayName" not in r["Properties"]}
    stack = dev.models["iris"]
    published = {platform_ref_id(dev, stack, notification[key]) for key in ("SuccessTopic", "ErrorTopic")}
    assert published == topics
    # Nothing reads a response inline (results are read from S3): notifications stay small for the queue,
    # the dead-letter queue and redrive.
    assert "IncludeInferenceResponseIn" not in notification
    assert config["AsyncInferenceConfig"]["ClientConfig"]["MaxConcurrentInvocationsPerInstance"] == 4
    # m5 has no instance storage, so its EBS volume is encrypted with the stage's key.
    assert "KmsKeyId" in config


def test_prod_async_endpoint_runs_on_a_gpu_without_a_volume_key(prod: Synthesized) -> None:
    config = async_endpoint_config(prod)
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.g5.xlarge"
    # g5 carries NVMe instance storage, for which SageMaker rejects a volume KMS key.
    assert "KmsKeyId" not in config


def test_async_endpoint_scales_from_zero_on_backlog(dev: Synthesized) -> None:
    targets = [r["Properties"] for r in dev.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()]
    [target] = [t for t in targets if t["ScalableDimension"] == "sagemaker:variant:DesiredInstanceCount"]
    assert target["MinCapacity"] == 0
    assert target["ResourceId"] == "endpoint/dev-iris-async/variant/AllTraffic"
    policies = [r["Properties"] for r in dev.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    kinds = {p["PolicyType"] for p in policies}
    assert kinds == {"TargetTrackingScaling", "StepScaling"}
    tracking = next(p for p in policies if p["PolicyType"] == "TargetTrackingScaling")
    metric = tracking["TargetTrackingScalingPolicyConfiguration"]["CustomizedMetricSpecification"]
    assert metric["MetricName"] == "ApproximateBacklogSizePerInstance"
    wake = [
        r["Properties"]
        for r in dev.resources("AWS::CloudWatch::Alarm").values()
        if r["Properties"].get("MetricName") == "HasBacklogWithoutCapacity"
        and "Scaling trigger" in str(r["Properties"]["AlarmDescription"])
    ]
    assert len(wake) == 1
    assert wake[0]["Threshold"] == 1


def async_scaling_of(synth: Synthesized) -> tuple[dict[str, Any], dict[str, Any]]:
    """The async endpoint's instance target and policies, and its deregister-before-update SDK call."""
    resources = synth.models["iris"].json["Resources"]
    scaling = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if resource["Type"].startswith("AWS::ApplicationAutoScaling::")
        and "DesiredProvisionedConcurrency" not in json.dumps(resource)
        and "ProvisionedConcurrency" not in logical_id
    }
    [guard] = [r for r in resources.values() if r["Type"] == "Custom::AWS"]
    return scaling, guard


def test_changing_the_async_instance_type_deregisters_first_and_registers_anew(
    dev: Synthesized, tmp_path: Path
) -> None:
    """SageMaker refuses an instance-type change on a registered variant; CloudFormation must deregister it
    before the endpoint update and register new resources after, never deleting the shared target later."""
    document = json.loads(DEFAULT_STAGES_PATH.read_text())
    document["stages"]["dev"]["async_endpoint_defaults"]["instance_type"] = "ml.c5.xlarge"
    stages = tmp_path / "stages.json"
    stages.write_text(json.dumps(document))
    changed = synthesize("dev", tmp_path / "cdk", stages_path=stages)
    before, before_guard = async_scaling_of(dev)
    after, after_guard = async_scaling_of(changed)
    # New target and policies (new logical ids), and the old ones are retained, not deleted, on the way out.
    assert len(before) == len(after) == 3  # the target, its tracking policy and its wake-from-zero step
    assert not set(before) & set(after)
    assert {r.get("DeletionPolicy") for r in (*before.values(), *after.values())} == {"Retain"}
    # The same variant, so the router, alarms and dashboards name it unchanged.
    [after_target] = [r for r in after.values() if r["Type"].endswith("ScalableTarget")]
    assert after_target["Properties"]["ResourceId"] == "endpoint/dev-iris-async/variant/AllTraffic"
    # The SDK call changes (its physical id names the type), so CloudFormation updates it, and the endpoint
    # waits for it: the deregistration happens before UpdateEndpoint.
    assert before_guard["Properties"]["Update"] != after_guard["Properties"]["Update"]
    assert "ml.c5.xlarge" in json.dumps(after_guard["Properties"]["Update"])
    assert "deregisterScalableTarget" in json.dumps(after_guard["Properties"]["Update"])
    [endpoint] = [
        r
        for r in changed.models["iris"].json["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Endpoint" and r["Properties"]["EndpointName"] == "dev-iris-async"
    ]
    guard_ids = [i for i, r in changed.models["iris"].json["Resources"].items() if r["Type"] == "Custom::AWS"]
    assert set(guard_ids) <= set(endpoint.get("DependsOn", []))


def test_prod_serverless_pc_autoscales_on_utilization(prod: Synthesized) -> None:
    iris = prod.models["iris"]  # the router's own PC autoscaling lives in the platform stack
    targets = [r["Properties"] for r in iris.resources("AWS::ApplicationAutoScaling::ScalableTarget").values()]
    [target] = [t for t in targets if t["ScalableDimension"] == "sagemaker:variant:DesiredProvisionedConcurrency"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 10)
    policies = [r["Properties"] for r in iris.resources("AWS::ApplicationAutoScaling::ScalingPolicy").values()]
    predefined = [
        p["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]
        for p in policies
        if "PredefinedMetricSpecification" in p.get("TargetTrackingScalingPolicyConfiguration", {})
    ]
    assert predefined == ["SageMakerVariantProvisionedConcurrencyUtilization"]


def execution_role_statements(synth: Synthesized, kind: str = "async") -> list[dict[str, Any]]:
    [role_id] = [
        i
        for i, r in synth.resources("AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in str(r["Properties"]["AssumeRolePolicyDocument"])
        and r["Properties"]["Path"] == f"/inference-router/{synth.stage}/{kind}/"
    ]
    statements: list[dict[str, Any]] = []
    for policy in synth.resources("AWS::IAM::Policy").values():
        if role_id in [ref_id(role) for role in policy["Properties"]["Roles"]]:
            statements.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return statements


def test_sagemaker_role_may_publish_to_its_topics_and_use_the_key(dev: Synthesized) -> None:
    statements = execution_role_statements(dev)
    publish = [s for s in statements if s["Action"] == "sns:Publish"]
    assert len(publish) == 1
    assert len(publish[0]["Resource"]) == 2
    kms = [s for s in statements if "kms:GenerateDataKey" in s["Action"]]
    assert kms
    assert "Decrypt" in str(kms[0]["Action"])


def test_models_point_at_the_built_images_and_the_uploaded_artifact(prod: Synthesized) -> None:
    models = [r["Properties"]["PrimaryContainer"] for r in prod.resources("AWS::SageMaker::Model").values()]
    assert len(models) == 2  # the serverless (CPU) image and the async (GPU) image
    data_urls = {json.dumps(container["ModelDataUrl"]) for container in models}
    assert len(data_urls) == 1  # one model.tar.gz asset, shared
    assert data_urls.pop().endswith('.gz"}')
    manifest = model_assets(prod, "iris")
    dockerfiles = sorted(image["source"]["dockerFile"] for image in manifest["dockerImages"].values())
    assert dockerfiles == ["docker/serving-gpu/Dockerfile", "docker/serving/Dockerfile"]
    images = {json.dumps(container["Image"]) for container in models}
    assert len(images) == 2
    assert all("container-assets" in image for image in images)


def async_model_dockerfile(synth: Synthesized, model: str) -> str:
    """The Dockerfile of the image asset the async endpoint's SageMaker model runs."""
    config = async_endpoint_config(synth)
    model_id = ref_id(config["ProductionVariants"][0]["ModelName"])
    image = json.dumps(by_id(synth, model_id)["PrimaryContainer"]["Image"])
    [dockerfile] = [
        entry["source"]["dockerFile"]
        for asset_hash, entry in model_assets(synth, model)["dockerImages"].items()
        if asset_hash in image
    ]
    return str(dockerfile)


def test_dev_async_model_runs_the_cpu_image_and_prod_the_gpu_image(dev: Synthesized, prod: Synthesized) -> None:
    assert async_model_dockerfile(dev, "iris") == "docker/serving/Dockerfile"
    assert async_model_dockerfile(prod, "iris") == "docker/serving-gpu/Dockerfile"
    # dev builds one image for both endpoints, never the multi-gigabyte CUDA one.
    dockerfiles = [image["source"]["dockerFile"] for image in model_assets(dev, "iris")["dockerImages"].values()]
    assert dockerfiles == ["docker/serving/Dockerfile"]


def test_every_model_container_gets_the_batching_block_as_environment(dev: Synthesized) -> None:
    # iris has no batching block and a free batch dim: batching on with the defaults, on both containers.
    containers = [r["Properties"]["PrimaryContainer"] for r in dev.resources("AWS::SageMaker::Model").values()]
    assert [container["Environment"] for container in containers] == [
        {"SERVING_BATCHING": "on", "SERVING_MAX_BATCH_SIZE": "32", "SERVING_MAX_QUEUE_DELAY_MS": "1"}
    ] * 2


def test_a_models_batching_block_reaches_its_containers_environment(tmp_path: Path) -> None:
    document = json.loads((ROOT / "functions" / "models.json").read_text())
    document["models"][0]["batching"] = {"max_batch_size": 16, "max_queue_delay_ms": 2.5}
    (tmp_path / "models.json").write_text(json.dumps(document))
    models = load_models_config(tmp_path / "models.json")
    app = new_app(outdir=str(tmp_path / "out"))
    stack = ModelStack(
        app,
        "Batching",
        models=models,
        model=models.models[0],
        stage=load_stage_config("dev", models=models),
        model_package_dir=tmp_path / "packages",
    )
    containers = [
        r["Properties"]["PrimaryContainer"]
        for r in Template.from_stack(stack).find_resources("AWS::SageMaker::Model").values()
    ]
    assert len(containers) == 2
    for container in containers:
        assert container["Environment"] == {
            "SERVING_BATCHING": "on",
            "SERVING_MAX_BATCH_SIZE": "16",
            "SERVING_MAX_QUEUE_DELAY_MS": "2.5",
        }


def test_model_tarball_holds_the_model_and_its_signature(dev: Synthesized) -> None:
    manifest = model_assets(dev, "iris")
    [archive] = [f["source"]["path"] for f in manifest["files"].values() if f["source"]["path"].endswith(".tar.gz")]
    with tarfile.open(dev.outdir / archive) as bundle:
        assert sorted(bundle.getnames()) == ["model.onnx", "signature.json"]
        signature = json.loads(bundle.extractfile("signature.json").read())  # type: ignore[union-attr]
    # What the container reads and nothing of the router's: a route or limits change must not repack it.
    assert sorted(signature) == ["inputs", "name", "outputs", "platform", "version"]
    assert signature["name"] == "iris"
    assert signature["inputs"][0]["shape"] == [-1, 4]


def test_a_lambda_routed_model_gets_the_onnxruntime_and_model_layers(tmp_path: Path) -> None:
    models = load_models_config(write_models_with_variants(tmp_path, {"iris-local": {"route": {"sync": "lambda"}}}))
    layer_zip = tmp_path / "onnxruntime-layer.zip"
    with zipfile.ZipFile(layer_zip, "w") as archive:
        archive.writestr("python/onnxruntime/__init__.py", "")
    app = new_app(outdir=str(tmp_path / "out"))
    stack = PlatformStack(
        app,
        "WithLocalModel",
        models=models,
        stage=load_stage_config("dev", models=models),
        onnxruntime_layer_zip=layer_zip,
    )
    template = Template.from_stack(stack)
    # The router's layers; the drift job's baselines layer (iris captures) is not the router's.
    layers = {k: v for k, v in template.find_resources("AWS::Lambda::LayerVersion").items() if "Drift" not in k}
    assert len(layers) == 2
    for layer in layers.values():
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    router = next(
        r["Properties"]
        for r in template.find_resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == "functions.handlers.router.handler.lambda_handler"
    )
    assert router["Environment"]["Variables"]["MODEL_ROOT"] == "/opt"
    assert {ref_id(layer) for layer in router["Layers"] if isinstance(layer, dict)} == set(layers)


def test_a_lambda_routed_model_without_the_built_layer_stops_synth(tmp_path: Path) -> None:
    models = load_models_config(write_models_with_variants(tmp_path, {"iris-local": {"route": {"sync": "lambda"}}}))
    app = new_app(outdir=str(tmp_path / "out"))
    with pytest.raises(FileNotFoundError, match="build it with `make layers`"):
        PlatformStack(
            app,
            "NoLayer",
            models=models,
            stage=load_stage_config("dev", models=models),
            onnxruntime_layer_zip=tmp_path / "absent.zip",
        )


def test_no_layer_is_attached_when_no_model_runs_in_the_router(tmp_path: Path) -> None:
    models = load_models_config(write_models_without_in_lambda(tmp_path))
    synth = synthesize("dev", tmp_path / "out", models=models)
    assert [k for k in synth.resources("AWS::Lambda::LayerVersion") if "Drift" not in k] == []
    [router] = synth.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    assert all(isinstance(layer, str) for layer in router["Properties"]["Layers"])  # the Powertools ARN alone
