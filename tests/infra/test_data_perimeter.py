"""The data perimeters (async storage, capture): who the buckets, topics, queue and keys admit, read by evaluating
the synthesized policies' Deny statements for a principal, the way IAM would (an explicit Deny wins over any
Allow)."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_

from infra.config.loader import DEFAULT_STAGES_PATH
from infra.constructs.drift import HANDLER as DRIFT_HANDLER
from infra.constructs.python_function import functions_code
from tests.helpers.synth import Synthesized, SynthesizedStack, synthesize

ACCOUNT = "111122223333"
STRANGER = f"arn:aws:iam::{ACCOUNT}:role/Administrator"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/operators/break-glass"
HANDLERS = {
    "router": "functions.handlers.router.handler.lambda_handler",
    "results": "functions.handlers.results.handler.lambda_handler",
    "sweeper": "functions.handlers.sweeper.handler.lambda_handler",
}


class Policies:
    """A stage's templates with every role, topic and pseudo parameter resolved to a concrete ARN."""

    def __init__(self, synth: Synthesized) -> None:
        self.synth = synth
        self.role_arns: dict[str, str] = {}
        self.bucket_arns: dict[str, str] = {}
        for stack in synth.all:
            for logical_id in stack.resources("AWS::S3::Bucket"):
                self.bucket_arns[logical_id] = f"arn:aws:s3:::{logical_id.lower()}"
            for logical_id, resource in stack.resources("AWS::IAM::Role").items():
                path = resource["Properties"].get("Path", "/")
                # CloudFormation names a role <stack name>-<logical id>-<suffix>; the suffix is left out here.
                self.role_arns[logical_id] = f"arn:aws:iam::{ACCOUNT}:role{path}{stack.name}-{logical_id}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if isinstance(value, dict) and "Ref" in value:
            return {"AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::Region": "us-east-1"}[value["Ref"]]
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self.resolve(part) for part in parts)
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", value
            return self.role_arns.get(logical_id) or self.bucket_arns[logical_id]
        return value

    def function_role(self, handler: str) -> str:
        [function] = [
            r["Properties"]
            for r in self.synth.platform.resources("AWS::Lambda::Function").values()
            if r["Properties"]["Handler"] == handler
        ]
        return str(self.resolve(function["Role"]))

    def sagemaker_role(self, kind: str) -> str:
        [arn] = [arn for arn in self.role_arns.values() if f"role/inference-router/{self.synth.stage}/{kind}/" in arn]
        return arn

    def result_topics(self) -> dict[str, str]:
        """The async success and error topics (not the alarm topics), logical id -> ARN."""
        return {
            logical_id: f"arn:aws:sns:us-east-1:{ACCOUNT}:{t['Properties']['TopicName']}"
            for logical_id, t in self.synth.platform.resources("AWS::SNS::Topic").items()
            if "-async-" in t["Properties"].get("TopicName", "")
        }

    def topic_arns(self) -> list[str]:
        return sorted(self.result_topics().values())

    def topic_statements(self) -> list[dict[str, Any]]:
        return [
            s
            for topic in self.result_topics()
            for s in self.statements("AWS::SNS::TopicPolicy", "PolicyDocument", topic)
        ]

    def statements(self, policy_type: str, document_key: str, resource: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for policy in self.synth.platform.resources(policy_type).values():
            props = policy["Properties"]
            if resource is None or resource in json.dumps(props):
                found.extend(props[document_key]["Statement"])
        assert found, f"no {policy_type} names {resource}"
        return found

    def denied(
        self, statements: list[dict[str, Any]], action: str, resource: str | None = None, **context: str | None
    ) -> bool:
        """Whether any Deny statement applies to ``action`` (on ``resource``, when given) in this request context
        (IAM's condition rules: a negated operator holds when the key is absent, an ...IfExists operator too)."""
        request = {
            "aws:PrincipalArn": context.get("principal"),
            "aws:SourceArn": context.get("source"),
            "aws:PrincipalIsAWSService": "true" if context.get("principal") is None else "false",
            "aws:SecureTransport": "true",
            "s3:TlsVersion": "1.3",
        }
        return any(
            self._applies(s, action, request) and (resource is None or self._names(s, resource))
            for s in statements
            if s["Effect"] == "Deny"
        )

    def _names(self, statement: dict[str, Any], resource: str) -> bool:
        resources = self.resolve(statement["Resource"])
        patterns = resources if isinstance(resources, list) else [resources]
        return any(fnmatch.fnmatchcase(resource, pattern) for pattern in patterns)

    def _applies(self, statement: dict[str, Any], action: str, request: dict[str, str | None]) -> bool:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if not any(fnmatch.fnmatchcase(action, pattern) for pattern in actions):
            return False
        for operator, conditions in statement.get("Condition", {}).items():
            for key, expected in conditions.items():
                values = self.resolve(expected)
                values = values if isinstance(values, list) else [values]
                actual = request[key]
                if operator == "ArnNotLike":
                    holds = actual is None or not any(fnmatch.fnmatchcase(actual, v) for v in values)
                elif operator == "ArnNotEquals":
                    holds = actual is None or actual not in values
                elif operator == "NumericLessThan":
                    holds = actual is not None and float(actual) < float(values[0])
                elif operator in ("Bool", "BoolIfExists"):
                    holds = (actual is None and operator == "BoolIfExists") or actual == str(values[0]).lower()
                else:
                    raise AssertionError(f"condition operator {operator} is not modelled here")
                if not holds:
                    return False
        return True


@pytest.fixture(scope="module")
def dev_policies(dev: Synthesized) -> Policies:
    return Policies(dev)


@pytest.fixture(scope="module")
def break_glass_policies(tmp_path_factory: pytest.TempPathFactory) -> Policies:
    document = json.loads(DEFAULT_STAGES_PATH.read_text())
    document["defaults"]["data_perimeter"]["break_glass_role_arn"] = BREAK_GLASS
    root = tmp_path_factory.mktemp("break-glass")
    (root / "stages.json").write_text(json.dumps(document))
    return Policies(
        synthesize("dev", root / "out", stages_path=root / "stages.json", router_code=lambda_.Code.from_inline("x = 1"))
    )


def bucket_statements(policies: Policies) -> list[dict[str, Any]]:
    [bucket_id] = [
        i
        for i, r in policies.synth.platform.resources("AWS::S3::Bucket").items()
        if "LoggingConfiguration" in r["Properties"] and i.startswith("AsyncStorage")
    ]
    return policies.statements("AWS::S3::BucketPolicy", "PolicyDocument", bucket_id)


def key_statements(policies: Policies) -> list[dict[str, Any]]:
    [key] = [
        r["Properties"]["KeyPolicy"]["Statement"]
        for r in policies.synth.platform.resources("AWS::KMS::Key").values()
        if "Async" in r["Properties"]["Description"]
    ]
    return list(key)


def admitted(policies: Policies) -> list[str]:
    return [*(policies.function_role(h) for h in HANDLERS.values()), policies.sagemaker_role("async")]


def test_serverless_and_async_endpoints_run_as_separate_roles_under_the_stage_path(dev: Synthesized) -> None:
    [model_stack] = dev.models.values()
    roles = {
        r["Properties"]["Path"]: i
        for i, r in model_stack.resources("AWS::IAM::Role").items()
        if "sagemaker.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    }
    assert sorted(roles) == ["/inference-router/dev/async/", "/inference-router/dev/serverless/"]
    grants = {path: policy_text(model_stack, role_id) for path, role_id in roles.items()}
    serverless, async_ = grants["/inference-router/dev/serverless/"], grants["/inference-router/dev/async/"]
    for async_only in (
        "sns:Publish",
        "PlatformAsyncBucketName",
        "PlatformAsyncKeyArn",
        "/aws/sagemaker/Endpoints/dev-iris-async",
    ):
        assert async_only in async_
        assert async_only not in serverless
    assert "/aws/sagemaker/Endpoints/dev-iris:" in serverless
    models = {
        json.dumps(r["Properties"]["ExecutionRoleArn"]): r["Properties"]
        for r in model_stack.resources("AWS::SageMaker::Model").values()
    }
    assert sorted(models) == sorted(json.dumps({"Fn::GetAtt": [role_id, "Arn"]}) for role_id in roles.values())


def policy_text(stack: SynthesizedStack, role_id: str) -> str:
    return json.dumps(
        [
            p["Properties"]["PolicyDocument"]
            for p in stack.resources("AWS::IAM::Policy").values()
            if {"Ref": role_id} in p["Properties"]["Roles"]
        ]
    )


def test_only_the_async_model_is_network_isolated(dev: Synthesized) -> None:
    isolation = {
        logical_id.split("Endpoint")[-1][:-8]: r["Properties"]["EnableNetworkIsolation"]
        for logical_id, r in dev.resources("AWS::SageMaker::Model").items()
    }
    # Serverless Inference does not support network isolation (SageMaker's feature exclusions for it).
    assert isolation == {"AsyncModel": True, "Model": False}


def test_only_async_endpoint_roles_may_publish_results(dev_policies: Policies) -> None:
    assert len(dev_policies.result_topics()) == 2
    for topic in dev_policies.result_topics():
        statements = dev_policies.statements("AWS::SNS::TopicPolicy", "PolicyDocument", topic)
        assert not dev_policies.denied(statements, "sns:Publish", principal=dev_policies.sagemaker_role("async"))
        for outsider in (dev_policies.sagemaker_role("serverless"), dev_policies.function_role(HANDLERS["router"])):
            assert dev_policies.denied(statements, "sns:Publish", principal=outsider)
        assert dev_policies.denied(statements, "sns:Publish", principal=STRANGER)
        # Managing the topic is left to IAM: CloudFormation and the account keep it.
        assert not dev_policies.denied(statements, "sns:SetTopicAttributes", principal=STRANGER)


def test_another_stages_async_roles_may_not_publish(dev_policies: Policies) -> None:
    statements = dev_policies.topic_statements()
    neighbour = dev_policies.sagemaker_role("async").replace("/dev/async/", "/dev-eu/async/")
    assert dev_policies.denied(statements, "sns:Publish", principal=neighbour)


def test_the_result_queue_takes_messages_from_its_topics_only(dev_policies: Policies) -> None:
    [queue_id] = [
        i
        for i, r in dev_policies.synth.platform.resources("AWS::SQS::Queue").items()
        if "RedrivePolicy" in r["Properties"]
    ]
    statements = dev_policies.statements("AWS::SQS::QueuePolicy", "PolicyDocument", queue_id)
    for topic in dev_policies.topic_arns():
        assert not dev_policies.denied(statements, "sqs:SendMessage", source=topic)
    other_topic = f"arn:aws:sns:us-east-1:{ACCOUNT}:someone-elses-topic"
    assert dev_policies.denied(statements, "sqs:SendMessage", source=other_topic)
    for sender in (STRANGER, dev_policies.function_role(HANDLERS["router"]), dev_policies.sagemaker_role("async")):
        assert dev_policies.denied(statements, "sqs:SendMessage", principal=sender)


def test_the_bucket_admits_only_the_stages_own_roles_to_its_data(dev_policies: Policies) -> None:
    statements = bucket_statements(dev_policies)
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObjectVersion"):
        for insider in admitted(dev_policies):
            assert not dev_policies.denied(statements, action, principal=insider), (action, insider)
        for outsider in (STRANGER, ROOT, BREAK_GLASS, dev_policies.sagemaker_role("serverless")):
            assert dev_policies.denied(statements, action, principal=outsider), (action, outsider)


def test_the_bucket_perimeter_never_locks_out_managing_the_bucket(dev_policies: Policies) -> None:
    statements = bucket_statements(dev_policies)
    for action in ("s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucket"):
        assert not dev_policies.denied(statements, action, principal=ROOT)
        assert not dev_policies.denied(statements, action, principal=STRANGER)


def test_the_key_decrypts_only_for_the_stages_roles_and_aws_services(dev_policies: Policies) -> None:
    statements = key_statements(dev_policies)
    for action in ("kms:Decrypt", "kms:ReEncryptFrom"):
        for insider in admitted(dev_policies):
            assert not dev_policies.denied(statements, action, principal=insider)
        for outsider in (STRANGER, ROOT, dev_policies.sagemaker_role("serverless")):
            assert dev_policies.denied(statements, action, principal=outsider)
        # SNS delivering to the encrypted queues, DynamoDB using the table key through its grant.
        assert not dev_policies.denied(statements, action, principal=None)
    # Key administration stays with the account (no lock-out): the root statement is still there, undenied.
    assert any(s["Effect"] == "Allow" and s["Action"] == "kms:*" for s in statements)
    for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"):
        assert not dev_policies.denied(statements, action, principal=ROOT)


def test_sns_may_use_the_key_only_for_the_two_result_topics(dev_policies: Policies) -> None:
    grants = [s for s in key_statements(dev_policies) if s["Principal"] == {"Service": "sns.amazonaws.com"}]
    assert len(grants) == 1
    conditions = grants[0]["Condition"]
    assert sorted(dev_policies.resolve(conditions["ArnEquals"]["aws:SourceArn"])) == dev_policies.topic_arns()
    assert dev_policies.resolve(conditions["StringEquals"]["aws:SourceAccount"]) == ACCOUNT


def test_a_break_glass_role_from_the_stage_config_is_admitted(break_glass_policies: Policies) -> None:
    policies = break_glass_policies
    assert not policies.denied(bucket_statements(policies), "s3:GetObject", principal=BREAK_GLASS)
    assert not policies.denied(key_statements(policies), "kms:Decrypt", principal=BREAK_GLASS)
    [queue_id] = [
        i for i, r in policies.synth.platform.resources("AWS::SQS::Queue").items() if "RedrivePolicy" in r["Properties"]
    ]
    queue = policies.statements("AWS::SQS::QueuePolicy", "PolicyDocument", queue_id)
    assert not policies.denied(queue, "sqs:SendMessage", principal=BREAK_GLASS)  # ops redrive
    assert policies.denied(queue, "sqs:SendMessage", principal=STRANGER)
    topics = policies.topic_statements()
    assert policies.denied(topics, "sns:Publish", principal=BREAK_GLASS)  # nobody forges a notification
    assert policies.denied(bucket_statements(policies), "s3:GetObject", principal=STRANGER)


def staged_files(asset_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(asset_dir)) for p in asset_dir.rglob("*") if p.is_file())


def test_the_function_asset_ships_only_python_and_json_from_functions(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shipped = ["functions/__init__.py", "functions/models.json", "functions/handlers/router/app.py"]
    kept_out = [
        "functions/.env",
        "functions/.npmrc",
        "functions/handlers/.env.json",
        "functions/.secrets/key.json",
        "functions/README.md",
        "functions/Makefile",
        "functions/__pycache__/app.cpython-311.pyc",
        ".env",
        "local/settings.py",
    ]
    for name in shipped + kept_out:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text("TOKEN=secret\n")
    app = App(outdir=str(tmp_path / "out"))
    stack = Stack(app, "Asset")
    lambda_.Function(stack, "F", runtime=lambda_.Runtime.PYTHON_3_13, handler="x.y", code=functions_code(repo))
    app.synth()
    [asset_dir] = [p for p in (tmp_path / "out").iterdir() if p.name.startswith("asset.")]
    assert staged_files(asset_dir) == sorted(shipped)


def test_the_real_router_asset_holds_no_dotfile(dev: Synthesized) -> None:
    code = next(
        r["Properties"]["Code"]
        for r in dev.platform.resources("AWS::Lambda::Function").values()
        if r["Properties"]["Handler"] == HANDLERS["router"]
    )
    asset_dir = dev.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"
    files = staged_files(asset_dir)
    assert "functions/models.json" in files
    for name in files:
        assert name.startswith("functions/"), name
        assert name.endswith((".py", ".json")), name
        assert not any(part.startswith(".") for part in Path(name).parts), name


def test_one_stages_roles_are_outsiders_to_another_stage(
    dev_policies: Policies, synth: Callable[[str], Synthesized]
) -> None:
    prod_policies = Policies(synth("prod"))
    bucket, key = bucket_statements(prod_policies), key_statements(prod_policies)
    for insider in admitted(prod_policies):
        assert not prod_policies.denied(bucket, "s3:GetObject", principal=insider)
    for dev_role in admitted(dev_policies):
        assert prod_policies.denied(bucket, "s3:GetObject", principal=dev_role)
        assert prod_policies.denied(key, "kms:Decrypt", principal=dev_role)


# The capture bucket: request data delivered by Firehose, read by the drift job, which writes its reports beside it.
CAPTURED = "capture/model=iris/date=2025-01-02/part-1.jsonl.gz"
ERRORED = "capture-errors/processing-failed/2025-01-02/part-1.gz"
REPORT = "reports/drift/model=iris/date=2025-01-02/report.html"
OTHER = "anything-else.txt"


@pytest.fixture(scope="module")
def capture_policies(dev: Synthesized, prod: Synthesized) -> dict[str, Policies]:
    return {"dev": Policies(dev), "prod": Policies(prod)}


def capture_bucket(policies: Policies) -> tuple[str, list[dict[str, Any]]]:
    """The capture bucket's ARN and its policy's statements."""
    [bucket_id] = [
        i
        for i, r in policies.synth.platform.resources("AWS::S3::Bucket").items()
        if r["Properties"].get("LoggingConfiguration", {}).get("LogFilePrefix") == "capture-bucket/"
    ]
    return policies.bucket_arns[bucket_id], policies.statements("AWS::S3::BucketPolicy", "PolicyDocument", bucket_id)


def capture_key_statements(policies: Policies) -> list[dict[str, Any]]:
    [key] = [
        r["Properties"]["KeyPolicy"]["Statement"]
        for r in policies.synth.platform.resources("AWS::KMS::Key").values()
        if r["Properties"]["Description"].startswith("Captured inference requests")
    ]
    return list(key)


def delivery_role(policies: Policies) -> str:
    [role_id] = [
        i
        for i, r in policies.synth.platform.resources("AWS::IAM::Role").items()
        if "firehose.amazonaws.com" in json.dumps(r["Properties"]["AssumeRolePolicyDocument"])
    ]
    return policies.role_arns[role_id]


WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
PROBES = [(action, key) for action in ("s3:GetObject", *WRITES) for key in (CAPTURED, ERRORED, REPORT, OTHER)] + [
    ("s3:ListBucket", None),
    ("s3:ListBucketMultipartUploads", None),
]


def capture_denied(policies: Policies, principal: str) -> set[str]:
    """The probes (``<action> <object key>``, or ``<action> bucket``) the capture bucket's policy denies."""
    bucket_arn, statements = capture_bucket(policies)
    return {
        f"{action} {key or 'bucket'}"
        for action, key in PROBES
        if policies.denied(statements, action, f"{bucket_arn}/{key}" if key else bucket_arn, principal=principal)
    }


EVERYTHING = {f"{action} {key or 'bucket'}" for action, key in PROBES}


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_capture_bucket_admits_firehose_to_write_captures_and_the_drift_job_to_read_them(
    capture_policies: dict[str, Policies], stage: str
) -> None:
    """Only Firehose writes under capture/ and capture-errors/, only the drift job reads capture/ and writes
    reports/drift/; whatever else each may do is its identity policy's (test_capture_infra, test_drift_infra)."""
    policies = capture_policies[stage]
    assert capture_denied(policies, delivery_role(policies)) == {f"s3:GetObject {CAPTURED}"} | {
        f"{action} {REPORT}" for action in WRITES
    }
    assert capture_denied(policies, policies.function_role(DRIFT_HANDLER)) == {
        f"{action} {key}" for action in WRITES for key in (CAPTURED, ERRORED)
    }
    for outsider in (STRANGER, ROOT, BREAK_GLASS, policies.function_role(HANDLERS["router"]), *admitted(policies)):
        assert capture_denied(policies, outsider) == EVERYTHING, outsider
    # Managing the bucket stays with IAM (no lock-out); TLS-only stays.
    _, statements = capture_bucket(policies)
    for action in ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:PutLifecycleConfiguration", "s3:DeleteBucket"):
        assert not policies.denied(statements, action, principal=ROOT)
    assert any(s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false" for s in statements)


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_the_capture_key_decrypts_only_for_firehose_the_drift_job_and_aws_services(
    capture_policies: dict[str, Policies], stage: str
) -> None:
    policies = capture_policies[stage]
    statements = capture_key_statements(policies)
    for action in ("kms:Decrypt", "kms:ReEncryptFrom"):
        for insider in (delivery_role(policies), policies.function_role(DRIFT_HANDLER), None):
            assert not policies.denied(statements, action, principal=insider), (action, insider)
        for outsider in (STRANGER, ROOT, BREAK_GLASS, policies.function_role(HANDLERS["router"])):
            assert policies.denied(statements, action, principal=outsider), (action, outsider)
    for action in ("kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:CreateGrant"):
        assert not policies.denied(statements, action, principal=ROOT)


def test_a_break_glass_role_from_the_stage_config_reaches_every_capture_object(break_glass_policies: Policies) -> None:
    policies = break_glass_policies
    assert capture_denied(policies, BREAK_GLASS) == set()
    assert capture_denied(policies, STRANGER) == EVERYTHING
    assert not policies.denied(capture_key_statements(policies), "kms:Decrypt", principal=BREAK_GLASS)
    assert policies.denied(capture_key_statements(policies), "kms:Decrypt", principal=STRANGER)
