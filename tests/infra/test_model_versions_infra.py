"""Model versions on SageMaker, in both stages: iris v1 (its own serverless and async endpoints), v2 on a
serverless endpoint of its own (sized in the stage config by its endpoint name) and v3, a shadow on another,
all in iris's model stack, each with its own package, alarms and dashboard section; the primary's resources
are those a model without versions has, the platform does not change for a weighted version, and preflight
counts every version's endpoints."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import ManualArgs, lint_file

from functions.config.limits import CLOUDFORMATION_MAX_RESOURCES
from functions.config.models import DEFAULT_CONFIG_PATH, load_models_config
from infra.config.loader import StageConfigError, load_stage_config
from infra.preflight import prerequisites, quota_needs
from infra.stack_limits import template_size
from tests.helpers.synth import Synthesized, ref_id, synthesize
from tests.infra.test_guardrails import CFN_LINT_IGNORED

ROOT = Path(__file__).resolve().parents[2]
STAGES_PATH = ROOT / "infra" / "stages.json"
V2 = {"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "iris-v2"}}
V3_SHADOW = {
    "version": "3",
    "route": {"sync": "serverless", "serverless_endpoint": "iris-v3"},
    "shadow": {"sample_rate": 0.25},
}
# v2's endpoint sized by its own name in the stage config; v3's takes the stage's serverless defaults.
V2_SIZING = {"memory_mb": 3072, "max_concurrency": 3, "provisioned_concurrency": 0}


def versioned_models(folder: Path, *versions: dict[str, Any], traffic: dict[str, int] | None = None) -> Path:
    document: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [iris] = [model for model in document["models"] if model["name"] == "iris"]
    iris["versions"] = [copy.deepcopy(version) for version in versions]
    if traffic is not None:
        iris["traffic"] = traffic
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "models.json"
    path.write_text(json.dumps(document))
    return path


def stages_with_v2_sizing(folder: Path) -> Path:
    document: dict[str, Any] = json.loads(STAGES_PATH.read_text())
    for stage in ("dev", "prod"):
        document["stages"][stage].setdefault("serverless_endpoints", {})["iris-v2"] = dict(V2_SIZING)
    path = folder / "stages.json"
    path.write_text(json.dumps(document))
    return path


@pytest.fixture(scope="module", params=["dev", "prod"])
def folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where a stage's versioned configs, packages and templates go (named after the stage)."""
    path: Path = tmp_path_factory.mktemp("versions") / str(request.param)
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def versioned(folder: Path) -> Synthesized:
    # synthesize() runs cdk-nag over every stack and the CloudFormation limit check: either would raise here.
    models = versioned_models(folder, V2, V3_SHADOW, traffic={"1": 90, "2": 10})
    return synthesize(
        folder.name,
        folder / "out",
        models=load_models_config(models),
        stages_path=stages_with_v2_sizing(folder),
        model_package_dir=folder / "packages",
    )


def default_of(synth: Synthesized, dev: Synthesized, prod: Synthesized) -> Synthesized:
    return dev if synth.stage == "dev" else prod


def serverless_endpoints(synth: Synthesized) -> dict[str, dict[str, Any]]:
    """Endpoint name -> its serverless config, from iris's model stack."""
    stack = synth.models["iris"]
    configs = stack.resources("AWS::SageMaker::EndpointConfig")
    found: dict[str, dict[str, Any]] = {}
    for endpoint in stack.resources("AWS::SageMaker::Endpoint").values():
        props = endpoint["Properties"]
        config = configs[ref_id(props["EndpointConfigName"])]["Properties"]
        [variant] = config["ProductionVariants"]
        if "ServerlessConfig" in variant:
            found[props["EndpointName"]] = variant["ServerlessConfig"]
    return found


def test_every_version_gets_its_serverless_endpoint_with_the_stages_sizes(versioned: Synthesized, folder: Path) -> None:
    models = load_models_config(folder / "models.json")
    stage = load_stage_config(versioned.stage, models=models, path=folder / "stages.json")
    prefix = stage.endpoint_name_prefix
    endpoints = serverless_endpoints(versioned)
    assert sorted(endpoints) == [f"{prefix}iris", f"{prefix}iris-v2", f"{prefix}iris-v3"]
    iris = stage.serverless_endpoints["iris"]
    assert endpoints[f"{prefix}iris"]["MemorySizeInMB"] == iris.memory_mb
    assert endpoints[f"{prefix}iris"]["MaxConcurrency"] == iris.max_concurrency
    assert (endpoints[f"{prefix}iris-v2"]["MemorySizeInMB"], endpoints[f"{prefix}iris-v2"]["MaxConcurrency"]) == (
        V2_SIZING["memory_mb"],
        V2_SIZING["max_concurrency"],
    )
    defaults = stage.serverless_endpoint_defaults
    assert (endpoints[f"{prefix}iris-v3"]["MemorySizeInMB"], endpoints[f"{prefix}iris-v3"]["MaxConcurrency"]) == (
        defaults.memory_mb,
        defaults.max_concurrency,
    )
    # The versions have no async endpoint: the primary's stays the only one.
    async_names = [
        endpoint["Properties"]["EndpointName"]
        for endpoint in versioned.models["iris"].resources("AWS::SageMaker::Endpoint").values()
        if endpoint["Properties"]["EndpointName"] not in endpoints
    ]
    assert async_names == [f"{prefix}iris-async"]


def test_each_versions_container_gets_its_own_package(versioned: Synthesized, folder: Path) -> None:
    stack = versioned.models["iris"]
    models = stack.resources("AWS::SageMaker::Model")
    data_urls = {json.dumps(model["Properties"]["PrimaryContainer"]["ModelDataUrl"]) for model in models.values()}
    # v1's serverless and async containers share v1's package; v2 and v3 each have theirs.
    assert len(models) == 4
    assert len(data_urls) == 3
    packages = sorted(path.name for path in (folder / "packages").iterdir())
    assert [name.rsplit("-", 1)[0] for name in packages] == ["iris", "iris-v2", "iris-v3"]


def alarmed_endpoints(synth: Synthesized, metric_name: str) -> list[str]:
    """The endpoints with an on-call alarm (one with a runbook) on ``metric_name``; a guarded deployment's
    rollback alarms are the deployment's, not on-call."""
    names = set()
    for alarm in synth.models["iris"].resources("AWS::CloudWatch::Alarm", {"MetricName": metric_name}).values():
        if "Runbook:" not in alarm["Properties"].get("AlarmDescription", ""):
            continue
        dimensions = {item["Name"]: item["Value"] for item in alarm["Properties"]["Dimensions"]}
        names.add(dimensions.get("EndpointName") or dimensions["endpoint"])
    return sorted(names)


def test_every_versions_endpoint_has_its_alarms_and_dashboard_section(versioned: Synthesized) -> None:
    prefix = f"{versioned.stage}-"
    expected = [f"{prefix}iris", f"{prefix}iris-v2", f"{prefix}iris-v3"]
    assert alarmed_endpoints(versioned, "Invocation5XXErrors") == expected
    assert alarmed_endpoints(versioned, "BreakerTransitions") == expected
    [dashboard] = versioned.models["iris"].resources("AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for name in expected:
        assert f"Serverless endpoint {name}" in body, name


def test_the_primarys_resources_are_those_of_a_model_without_versions(
    versioned: Synthesized, dev: Synthesized, prod: Synthesized
) -> None:
    before = without_image(default_of(versioned, dev, prod).models["iris"].json["Resources"])
    after = without_image(versioned.models["iris"].json["Resources"])
    for kind in ("AWS::SageMaker::Model", "AWS::SageMaker::EndpointConfig", "AWS::SageMaker::Endpoint"):
        unversioned = {logical_id: r for logical_id, r in before.items() if r["Type"] == kind}
        assert unversioned
        assert {logical_id: after[logical_id] for logical_id in unversioned} == unversioned, kind


def without_image(resources: dict[str, Any]) -> dict[str, Any]:
    """The resources less the serving image's asset hash: it hashes the whole repo tree, which other work in
    progress may change between two synths; the model package (ModelDataUrl) stays compared."""
    copied: dict[str, Any] = json.loads(json.dumps(resources))
    for resource in copied.values():
        resource.get("Properties", {}).get("PrimaryContainer", {}).pop("Image", None)
    return copied


def test_the_stacks_are_cfn_lint_clean_and_within_limits(versioned: Synthesized) -> None:
    for stack in versioned.all:
        matches = lint_file(stack.template_path, config=ManualArgs(ignore_checks=CFN_LINT_IGNORED))
        assert not matches, f"{stack.name}:\n" + "\n".join(str(match) for match in matches)
    size = template_size(versioned.models["iris"].name, versioned.models["iris"].template_path)
    assert size.resources < CLOUDFORMATION_MAX_RESOURCES // 2
    print(f"{versioned.stage}: iris with 3 versions: {size.resources} resources, {size.template_bytes} bytes")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_weighted_version_leaves_the_platforms_resources_and_permissions_unchanged(
    stage: str, tmp_path: Path, dev: Synthesized, prod: Synthesized
) -> None:
    # The router may invoke any endpoint under the stage's prefix and its sizes table lists only the endpoints
    # that differ from the stage default, so a version at the defaults adds no resource, no permission and no
    # router setting to the platform. (The router's code bundles functions/models.json, so the router gets a
    # new version for CodeDeploy to shift to, and the pre-traffic hook's timeout grows with its smoke requests.)
    models = load_models_config(versioned_models(tmp_path, V2, traffic={"1": 90, "2": 10}))
    synth = synthesize(stage, tmp_path / "out", models=models, model_package_dir=tmp_path / "packages")
    before = platform_view(dev if stage == "dev" else prod)
    after = platform_view(synth)
    assert after == before
    assert f"{stage}-iris-v2" in json.dumps(synth.models["iris"].json)


def platform_view(synth: Synthesized) -> str:
    """The platform's resource ids and types, its IAM, and the router's environment, with the code bundles' keys
    and the router version made from the bundle masked."""
    resources = synth.platform.json["Resources"]
    [router] = synth.platform.resources(
        "AWS::Lambda::Function", {"Handler": "functions.handlers.router.handler.lambda_handler"}
    ).values()
    view = {
        "types": {logical_id: resource["Type"] for logical_id, resource in resources.items()},
        "iam": {
            logical_id: resource["Properties"]
            for logical_id, resource in resources.items()
            if resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy")
        },
        "router_environment": router["Properties"]["Environment"],
    }
    text = json.dumps(view, sort_keys=True)
    text = re.sub(r'"[0-9a-f]{64}\\.zip"', '"<bundle>.zip"', text)
    return re.sub(r"RouterFunctionCurrentVersion[0-9A-F]{8}[0-9a-f]{32}", "RouterFunctionCurrentVersion<hash>", text)


def test_preflight_counts_every_versions_endpoint(tmp_path: Path) -> None:
    models = load_models_config(
        versioned_models(
            tmp_path,
            V2,
            {"version": "4", "route": {"sync": None, "async_endpoint": "iris-v4-async"}},
            traffic={"1": 50, "2": 25, "4": 25},
        )
    )
    stage = load_stage_config("prod", models=models, path=stages_with_v2_sizing(tmp_path))
    [serverless] = [need for need in quota_needs(stage) if "serverless max concurrency" in need.detail]
    assert serverless.needed == sum(endpoint.max_concurrency for endpoint in stage.serverless_endpoints.values())
    assert "iris-v2 3" in serverless.detail
    [gpu] = [need for need in quota_needs(stage) if need.quota_name == "ml.g5.xlarge for endpoint usage"]
    assert "iris-v4-async" in gpu.detail
    assert any("docker/serving-gpu/Dockerfile" in line for line in prerequisites(stage, models))


def test_one_model_data_url_for_several_versions_is_refused(tmp_path: Path) -> None:
    models = load_models_config(versioned_models(tmp_path, V2, traffic={"1": 90, "2": 10}))
    document: dict[str, Any] = json.loads(STAGES_PATH.read_text())
    document["stages"]["dev"]["models"] = {"iris": {"model_data_url": "s3://bucket/iris/model.tar.gz"}}
    (tmp_path / "stages.json").write_text(json.dumps(document))
    with pytest.raises(StageConfigError, match=r"stages\.dev\.models\.iris\.model_data_url: .*versions 1, 2"):
        load_stage_config("dev", models=models, path=tmp_path / "stages.json")


def test_a_version_alone_on_sagemaker_gives_the_model_a_stack(tmp_path: Path) -> None:
    document: dict[str, Any] = json.loads(DEFAULT_CONFIG_PATH.read_text())
    [digits] = [model for model in document["models"] if model["name"] == "digits"]
    digits["versions"] = [{"version": "2", "route": {"sync": "serverless", "serverless_endpoint": "digits-v2"}}]
    digits["traffic"] = {"1": 95, "2": 5}
    (tmp_path / "models.json").write_text(json.dumps(document))
    stage = load_stage_config("dev", models=load_models_config(tmp_path / "models.json"))
    assert "digits" in stage.models
    assert "digits-v2" in stage.serverless_endpoints
