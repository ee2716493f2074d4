"""DriftJob: the scheduled function that compares each capturing model's captured window with its baseline.

EventBridge runs it on the stage's ``drift.schedule`` (functions/handlers/drift/): it reads ``capture/`` of the
capture bucket, writes an HTML report under ``reports/drift/`` and publishes ``MaxFeaturePsi`` per model, which
each model's ``feature_drift`` ticket watches (:func:`feature_drift_alarm`: in the model's own stack, or in the
platform for a model without one). Every capturing model's ``baseline.json`` (next to its artifact) ships in
one Lambda layer, ``/opt/baselines/<model>.json``: one resource, one environment variable and no grant however
many models capture.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from functions.config.drift_contract import (
    BASELINE_FILE,
    BASELINES_DIR_VARIABLE,
    BASELINES_LAYER_DIR,
    BASELINES_LAYER_SUFFIX,
    CAPTURE_BUCKET_VARIABLE,
    CAPTURE_PREFIX,
    DRIFT_REPORT_PREFIX,
    DRIFT_SERVICE,
    DRIFT_SETTINGS_VARIABLE,
    MAX_FEATURE_PSI_METRIC,
)
from functions.config.model_types import ModelConfig
from functions.config.telemetry import METRICS_NAMESPACE, MODEL_DIMENSION, SERVICE_DIMENSION
from infra.config.types import DriftConfig
from infra.constructs.failure_queue import failure_queue
from infra.constructs.on_call_alarm import OnCallAlarms
from infra.constructs.python_function import ARCHITECTURE, REPO_ROOT, RUNTIME, PythonFunction
from infra.guardrails import acknowledge, resource_token

HANDLER: Final[str] = "functions.handlers.drift.handler.lambda_handler"
# A day of captures at 5% of iris's traffic is a few MB of JSON lines; the job streams them through pure
# Python, so the limit is CPU time, which grows with memory.
MEMORY_MB: Final[int] = 1024
FUNCTION_TIMEOUT: Final[Duration] = Duration.minutes(15)
# A failed run is retried twice (a throttle, a transient S3 error); one still failing waits in the failure queue.
RETRY_ATTEMPTS: Final[int] = 2
MAX_EVENT_AGE: Final[Duration] = Duration.hours(6)
FAILURE_RETENTION: Final[Duration] = Duration.days(14)
# Lambda extracts layers under /opt.
BASELINES_DIR: Final[str] = f"/opt/{BASELINES_LAYER_DIR}"
# Lambda's quota: 250 MB unzipped for a function's code and all its layers together. The drift function's code
# (functions/, ~1.4 MB) and the Powertools layer take a few MB of it; the baselines may have 200 MB. An iris-sized
# baseline (4 inputs) is 7.5 KB, a digits-sized one (64 inputs, 10 probabilities) 370 KB: 200 models take 1.5 MB
# or 74 MB.
BASELINES_MAX_BYTES: Final[int] = 200_000_000


class DriftSetupError(ValueError):
    """A capturing model the drift job cannot compare (no artifact, or no baseline.json next to it), or
    baselines too large for the drift function's layer."""


def capture_baselines(models: Sequence[ModelConfig], repo_root: Path = REPO_ROOT) -> dict[str, Path]:
    """Each capturing model's ``<artifact dir>/baseline.json``; a capturing model without one is refused."""
    found: dict[str, Path] = {}
    for model in models:
        if model.capture is None:
            continue
        if model.artifact is None:
            raise DriftSetupError(
                f"model {model.name!r} captures requests but has no artifact next to which a {BASELINE_FILE} could "
                "ship; remove its capture block or give it an artifact"
            )
        path = (repo_root / model.artifact).parent / BASELINE_FILE
        if not path.is_file():
            raise DriftSetupError(
                f"model {model.name!r} captures requests but {path} does not exist: build it with "
                f"python -m ops baseline --model {model.name} --data <reference data>"
            )
        found[model.name] = path
    return found


def stage_baselines(baselines: Mapping[str, Path], staging: Path, max_bytes: int = BASELINES_MAX_BYTES) -> Path:
    """Copy each model's baseline to ``<staging>/baselines/<model>.json`` (the layer's tree); refused over
    ``max_bytes`` in all, naming the largest."""
    sizes = {model: path.stat().st_size for model, path in baselines.items()}
    if sum(sizes.values()) > max_bytes:
        largest = sorted(sizes, key=lambda model: sizes[model], reverse=True)[:3]
        raise DriftSetupError(
            f"the baselines of {len(sizes)} capturing models take {sum(sizes.values()):,} bytes, over the "
            f"{max_bytes:,} the drift function's layer may hold (Lambda: 250 MB unzipped with its code); largest: "
            + ", ".join(f"{model} ({sizes[model]:,} bytes)" for model in largest)
        )
    folder = staging / BASELINES_LAYER_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for model, path in sorted(baselines.items()):
        shutil.copyfile(path, folder / f"{model}{BASELINES_LAYER_SUFFIX}")
    return staging


def max_feature_psi(model: str, statistic: str, period: Duration) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=MAX_FEATURE_PSI_METRIC,
        dimensions_map={SERVICE_DIMENSION: DRIFT_SERVICE, MODEL_DIMENSION: model},
        statistic=statistic,
        period=period,
    )


def feature_drift_alarm(scope: Construct, on_call: OnCallAlarms, model: str) -> cloudwatch.Alarm:
    """The ``feature_drift`` ticket of one capturing model (construct id ``FeatureDrift<Model>``)."""
    return on_call.add(
        scope,
        "feature_drift",
        model,
        f"model {model}",
        lambda statistic, period: max_feature_psi(model, statistic, period),
    )


class DriftJob(Construct):
    """Props (keyword-only): baselines (model -> its baseline.json), capture_bucket and capture_key (its KMS key,
    None for S3-managed encryption), drift (the stage's schedule and thresholds), code, powertools_layer_arn,
    log_retention, log_level, log_removal_policy.

    Attributes: ``function`` (PythonFunction), ``schedule`` (events.Rule), ``failures`` (sqs.Queue),
    ``baselines`` (the layer of every model's baseline).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        baselines: Mapping[str, Path],
        capture_bucket: s3.IBucket,
        capture_key: kms.IKey | None,
        drift: DriftConfig,
        code: lambda_.Code,
        powertools_layer_arn: str,
        log_retention: logs.RetentionDays,
        log_level: str,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        staging = stage_baselines(baselines, Path(tempfile.mkdtemp(prefix="inference-router-baselines-")))
        self.baselines = lambda_.LayerVersion(
            self,
            "Baselines",
            code=lambda_.Code.from_asset(str(staging)),
            description="Each capturing model's drift baseline, baselines/<model>.json",
            compatible_architectures=[ARCHITECTURE],
            compatible_runtimes=[RUNTIME],
        )
        settings = {"psi": drift.psi_threshold, "ks_p_value": drift.ks_p_value, "window_days": drift.window_days}
        self.function = PythonFunction(
            self,
            "Job",
            handler=HANDLER,
            description="Compares each model's captured requests with its baseline (PSI, KS) and reports drift",
            code=code,
            powertools_layer_arn=powertools_layer_arn,
            memory_mb=MEMORY_MB,
            timeout=FUNCTION_TIMEOUT,
            environment={
                CAPTURE_BUCKET_VARIABLE: capture_bucket.bucket_name,
                BASELINES_DIR_VARIABLE: BASELINES_DIR,
                DRIFT_SETTINGS_VARIABLE: json.dumps(settings, sort_keys=True),
                "POWERTOOLS_SERVICE_NAME": DRIFT_SERVICE,
                "POWERTOOLS_METRICS_NAMESPACE": METRICS_NAMESPACE,
            },
            log_retention=log_retention,
            log_level=log_level,
            log_removal_policy=log_removal_policy,
            # One run at a time: two would write the same report and publish the same day twice.
            reserved_concurrency=1,
        )
        self.function.function.add_layers(self.baselines)
        self._may_use_capture_bucket(self.function.role, capture_bucket, capture_key)

        self.failures = failure_queue(self, retention=FAILURE_RETENTION, invoked_by="the drift job's scheduled runs")
        # EventBridge invokes the function asynchronously: Lambda retries a failed run, then parks its event.
        self.function.function.configure_async_invoke(
            retry_attempts=RETRY_ATTEMPTS,
            max_event_age=MAX_EVENT_AGE,
            on_failure=destinations.SqsDestination(self.failures),
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Runs the drift job over the captured window",
            schedule=events.Schedule.expression(drift.schedule),
            targets=[targets.LambdaFunction(self.function.function, retry_attempts=RETRY_ATTEMPTS)],
        )

    def _may_use_capture_bucket(self, role: iam.IRole, bucket: s3.IBucket, key: kms.IKey | None) -> None:
        """Read the captures, write the reports, nothing else of the bucket."""
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{CAPTURE_PREFIX}*"]}},
            )
        )
        grants = (
            (["s3:GetObject"], CAPTURE_PREFIX, "Firehose names each capture object at delivery time."),
            (["s3:PutObject"], DRIFT_REPORT_PREFIX, "A report's key holds the model and the run's date."),
        )
        bucket_arn = resource_token(bucket, "Arn")
        for actions, prefix, why in grants:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{prefix}*")])
            )
            acknowledge(role, f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]", why)
        if key is not None:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=["kms:Decrypt", "kms:GenerateDataKey"], resources=[key.key_arn])
            )
