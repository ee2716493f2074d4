"""``python -m infra.preflight --stage S [--offline]``: the quotas and prerequisites a stage's deploy needs.

Offline it lists them from the stage and model config. With AWS credentials (boto3's default chain) it reads
the applied quotas from Service Quotas and marks each line OK, TOO LOW or UNKNOWN; the exit status is 1 when a
known quota is too low or the onnxruntime layer an in-Lambda model needs is not built, 2 when the config is
invalid.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from functions.config.config_reader import ConfigError
from functions.config.model_types import ModelsConfig
from functions.config.models import load_models_config
from infra.config.instances import image_variant
from infra.config.loader import load_stage_config
from infra.config.types import DEFAULT_STAGE, IMAGE_ASSET, StageConfig
from infra.model_package import ONNXRUNTIME_LAYER_ZIP
from infra.service_quotas import quota_values

SERVERLESS_CONCURRENCY_QUOTA: Final[str] = (
    "Maximum total concurrency that can be allocated across all serverless endpoints"
)
SERVERLESS_PROVISIONED_QUOTA: Final[str] = (
    "Maximum total provisioned concurrency that can be allocated across all serverless endpoints"
)
LAMBDA_CONCURRENCY_QUOTA: Final[str] = "Concurrent executions"
# Lambda refuses reserved or provisioned concurrency that would leave fewer than 100 unreserved executions.
LAMBDA_UNRESERVED_MINIMUM: Final[int] = 100
DOCKERFILES: Final[dict[str, str]] = {"cpu": "docker/serving/Dockerfile", "gpu": "docker/serving-gpu/Dockerfile"}


@dataclass(frozen=True, slots=True)
class QuotaNeed:
    service_code: str  # the Service Quotas service code
    quota_name: str  # the quota's name in Service Quotas
    needed: int
    detail: str  # where the figure comes from


def instance_quota_name(instance_type: str) -> str:
    return f"{instance_type} for endpoint usage"


def quota_needs(stage: StageConfig) -> list[QuotaNeed]:
    """What the stage asks of each quota at its configured maximum scale."""
    needs: list[QuotaNeed] = []
    by_type: dict[str, list[tuple[str, int]]] = {}
    for name, sizing in sorted(stage.async_endpoints.items()):
        by_type.setdefault(sizing.instance_type, []).append((name, sizing.max_instances))
    for instance_type, endpoints in sorted(by_type.items()):
        shown = ", ".join(f"{name} max {count}" for name, count in endpoints)
        needs.append(
            QuotaNeed("sagemaker", instance_quota_name(instance_type), sum(c for _, c in endpoints), f"async: {shown}")
        )
    serverless = sorted(stage.serverless_endpoints.items())
    if serverless:
        total = sum(sizing.max_concurrency for _, sizing in serverless)
        shown = ", ".join(f"{name} {sizing.max_concurrency}" for name, sizing in serverless)
        detail = f"serverless max concurrency: {shown}; stage budget {stage.serverless_concurrency_budget}"
        needs.append(QuotaNeed("sagemaker", SERVERLESS_CONCURRENCY_QUOTA, total, detail))
    # An autoscaled endpoint's provisioned concurrency can grow to its max_capacity.
    provisioned = [
        (name, sizing.pc_autoscaling.max_capacity if sizing.pc_autoscaling else sizing.provisioned_concurrency)
        for name, sizing in serverless
    ]
    provisioned = [(name, count) for name, count in provisioned if count > 0]
    if provisioned:
        shown = ", ".join(f"{name} {count}" for name, count in provisioned)
        needs.append(
            QuotaNeed("sagemaker", SERVERLESS_PROVISIONED_QUOTA, sum(c for _, c in provisioned), f"serverless: {shown}")
        )
    router = stage.router
    # An autoscaled alias's provisioned concurrency can grow to its max_capacity.
    autoscaling = router.provisioned_concurrency_autoscaling
    provisioned_max = autoscaling.max_capacity if autoscaling is not None else router.provisioned_concurrency
    provisioned_shown = (
        f"{router.provisioned_concurrency}, autoscaled up to {provisioned_max}"
        if autoscaling is not None
        else str(provisioned_max)
    )
    held = router.reserved_concurrency if router.reserved_concurrency is not None else provisioned_max
    held_detail = (
        f"router reserved {router.reserved_concurrency}"
        if router.reserved_concurrency is not None
        else f"router provisioned {provisioned_max}"
    )
    needs.append(
        QuotaNeed(
            "lambda",
            LAMBDA_CONCURRENCY_QUOTA,
            held + LAMBDA_UNRESERVED_MINIMUM,
            f"{held_detail} (provisioned {provisioned_shown}) + {LAMBDA_UNRESERVED_MINIMUM} Lambda keeps unreserved",
        )
    )
    return needs


def layer_prerequisite(models: ModelsConfig, layer_zip: Path) -> tuple[str, bool] | None:
    """The onnxruntime layer line when some model runs inside the router, and whether the layer is missing
    (synth stops without it); None when no model is ``lambda``-routed."""
    in_lambda = sorted({model.name for model in models.in_lambda_models()})
    if not in_lambda:
        return None
    names = ", ".join(in_lambda)
    if layer_zip.is_file():
        return f"onnxruntime layer for the in-Lambda models ({names}): built ({layer_zip.name})", False
    return f"MISSING: onnxruntime layer for the in-Lambda models ({names}): run `make layers` before synth", True


def prerequisites(stage: StageConfig, models: ModelsConfig) -> list[str]:
    """What the deploy needs besides quotas, one line each (the onnxruntime layer aside: layer_prerequisite)."""
    variants: set[str] = set()
    for name, deploy in stage.models.items():
        if deploy.image == IMAGE_ASSET:
            variants.add("cpu")
        model = models.model(name)
        for entry in model.versions if model is not None else ():
            endpoint = entry.route.async_endpoint
            if endpoint in stage.async_endpoints and deploy.async_image == IMAGE_ASSET:
                variants.add(image_variant(stage.async_endpoints[endpoint].instance_type))
    lines: list[str] = []
    if variants:
        built = ", ".join(DOCKERFILES[v] for v in sorted(variants))
        lines.append(f"Docker running at deploy (cdk deploy builds the image assets: {built})")
    else:
        lines.append("Docker not needed: every image is an ECR URI")
    account = stage.account or "<account>"
    lines.append(f"CDK bootstrap: cdk bootstrap aws://{account}/{stage.region}")
    if stage.data_perimeter.break_glass_role_arn:
        lines.append(f"break-glass role exists: {stage.data_perimeter.break_glass_role_arn}")
    return lines


def quota_status(need: QuotaNeed, applied: dict[str, dict[str, float]] | None) -> tuple[str, bool]:
    """``(status text, too low)`` for one need; ``applied`` is None when nothing could be checked."""
    if applied is None:
        return "NOT CHECKED", False
    values = applied.get(need.service_code)
    if values is None or need.quota_name not in values:
        return "UNKNOWN", False
    value = values[need.quota_name]
    if value < need.needed:
        return f"TOO LOW (quota {value:g})", True
    return f"OK (quota {value:g})", False


def report(
    stage: StageConfig,
    models: ModelsConfig,
    applied: dict[str, dict[str, float]] | None,
    why_unchecked: str,
    *,
    layer_zip: Path = ONNXRUNTIME_LAYER_ZIP,
) -> tuple[list[str], bool]:
    """The preflight text and whether something known is short: a quota too low, or the layer missing."""
    lines = [f"Preflight for stage {stage.name} (region {stage.region})", "Quotas:"]
    too_low = False
    for need in quota_needs(stage):
        status, low = quota_status(need, applied)
        too_low = too_low or low
        lines.append(f"  [{status}] {need.service_code}: {need.quota_name}: needs {need.needed} ({need.detail})")
    if applied is None:
        lines.append(f"  Quotas not checked: {why_unchecked}")
    lines.append("Prerequisites:")
    lines.extend(f"  {line}" for line in prerequisites(stage, models))
    layer = layer_prerequisite(models, layer_zip)
    if layer is not None:
        lines.append(f"  {layer[0]}")
        too_low = too_low or layer[1]
    return lines, too_low


def default_quota_client(region: str) -> Any | None:
    """A Service Quotas client when boto3's default chain finds credentials, else None."""
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        return None
    return session.client("service-quotas")


def main(
    argv: Sequence[str] | None = None,
    *,
    quota_client: Callable[[str], Any | None] = default_quota_client,
    layer_zip: Path = ONNXRUNTIME_LAYER_ZIP,
) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default=DEFAULT_STAGE)
    parser.add_argument("--offline", action="store_true", help="list only; do not call Service Quotas")
    args = parser.parse_args(argv)
    try:
        models = load_models_config()
        stage = load_stage_config(args.stage, models=models)
    except ConfigError as error:
        print(f"preflight: {error}", file=sys.stderr)
        return 2
    applied: dict[str, dict[str, float]] | None = None
    why = "--offline"
    if not args.offline:
        client = quota_client(stage.region)
        if client is None:
            why = "no AWS credentials found (boto3 default chain); the lines above are what to check by hand"
        else:
            codes = sorted({need.service_code for need in quota_needs(stage)})
            applied = {code: quota_values(client, code) for code in codes}
    lines, too_low = report(stage, models, applied, why, layer_zip=layer_zip)
    print("\n".join(lines))
    return 1 if too_low else 0


if __name__ == "__main__":
    sys.exit(main())
