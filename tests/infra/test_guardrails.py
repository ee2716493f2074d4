"""Executable guardrails: cdk-nag with every acknowledgment explained, cfn-lint clean, and the CLI synth."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from aws_cdk import Stack
from aws_cdk import aws_sns as sns
from cfnlint.api import ManualArgs, lint_file

from infra.app import new_app
from infra.findings import main
from infra.guardrails import acknowledge, add_guardrails
from tests.helpers.synth import Synthesized

ROOT = Path(__file__).resolve().parents[2]
# CDK writes DependsOn next to a GetAtt of the same resource for ordering it needs; cfn-lint calls that
# redundant (W3005). It is CDK's own output and harmless, so it is the one check ignored.
CFN_LINT_IGNORED = ["W3005"]


def test_cdk_nag_runs_and_every_acknowledgment_has_a_reason(dev: Synthesized, prod: Synthesized) -> None:
    # Reaching here means app.synth() passed the AwsSolutions pack: an unacknowledged finding raises.
    for synth in (dev, prod):
        assert synth.acknowledgments, "no acknowledgments recorded: is cdk-nag attached?"
        for finding in synth.acknowledgments:
            assert finding.rule.startswith("AwsSolutions-"), finding
            assert len(finding.reason) >= 40, finding


def test_findings_cli_lists_each_acknowledgment_with_its_reason(
    dev: Synthesized, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["--stage", "dev"])
    rows = [line.split("\t") for line in capsys.readouterr().out.splitlines()]
    assert all(len(row) == 4 for row in rows), rows
    listed = {(rule, reason) for _, _, rule, reason in rows}
    assert listed == {(finding.rule, finding.reason) for finding in dev.acknowledgments}
    assert {stack for stack, *_ in rows} == {stack.name for stack in dev.all}
    assert any(
        stack == "InferenceRouter-dev" and path == "Api/RestApi" and rule == "AwsSolutions-APIG4"
        for stack, path, rule, _ in rows
    )


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    app = new_app(outdir=str(tmp_path))
    stack = Stack(app, "Careless")
    sns.Topic(stack, "PlainTopic")  # no SSL-only policy: AwsSolutions-SNS3
    add_guardrails(app)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {violation["ruleName"] for plugin in report["pluginReports"] for violation in plugin["violations"]}
    assert "AwsSolutions-SNS3" in rules


def test_an_acknowledgment_without_a_reason_is_refused(dev: Synthesized) -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        acknowledge(dev.stack.router.role, "AwsSolutions-IAM5", "because")


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_cfn_lint_finds_nothing(stage: str, dev: Synthesized, prod: Synthesized) -> None:
    synth = dev if stage == "dev" else prod
    for stack in synth.all:
        matches = lint_file(stack.template_path, config=ManualArgs(ignore_checks=CFN_LINT_IGNORED))
        assert not matches, f"{stack.name}:\n" + "\n".join(str(match) for match in matches)


def test_cfn_lint_does_report_a_broken_template(tmp_path: Path, dev: Synthesized) -> None:
    template = json.loads(dev.platform.template_path.read_text())
    function = next(r for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function")
    function["Properties"]["Runtime"] = "python2.7"
    broken = tmp_path / "broken.template.json"
    broken.write_text(json.dumps(template))
    assert lint_file(broken, config=ManualArgs(ignore_checks=CFN_LINT_IGNORED))


def test_cdk_cli_synthesizes_offline_without_docker_or_credentials(tmp_path: Path) -> None:
    cdk = ROOT / "node_modules" / ".bin" / "cdk"
    assert cdk.exists(), "the CDK CLI is missing: `make setup` installs it from package-lock.json"
    environment = {
        "PATH": f"{Path(shutil.which('node') or '/usr/bin/node').parent}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "CDK_DISABLE_VERSION_CHECK": "1",
        # No credentials and an unroutable metadata endpoint: synth must not need either.
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    started = time.monotonic()
    result = subprocess.run(
        [
            str(cdk),
            "synth",
            "--quiet",
            "--no-notices",
            "--no-version-reporting",
            "-c",
            "stage=prod",
            "-o",
            str(tmp_path / "cdk.out"),
        ],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    for stack in ("InferenceRouter-prod", "InferenceRouter-prod-model-iris"):
        assert (tmp_path / "cdk.out" / f"{stack}.template.json").exists(), stack
    assert "docker" not in result.stderr.lower()
    # Nothing in the environment silences jsii: the app's package does it before aws_cdk loads.
    assert "end-of-life" not in result.stderr
    print(f"cdk synth -c stage=prod: {elapsed:.1f} s")
