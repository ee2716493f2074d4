"""The CDK app: ``cdk synth -c stage=prod`` (default stage: dev). Offline: no lookups, no Docker, no credentials.

cdk.json runs it as ``.venv/bin/python -m infra.app``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Final

from aws_cdk import App, Environment

from functions.config.config_reader import ConfigError
from functions.config.models import load_models_config
from infra.config.loader import load_stage_config
from infra.config.types import DEFAULT_STAGE
from infra.guardrails import add_guardrails
from infra.stacks.inference_router import InferenceRouterStack, stack_name

CDK_JSON: Final[Path] = Path(__file__).resolve().parent.parent / "cdk.json"


def new_app(**context: Any) -> App:
    """An App with cdk.json's context (feature flags included), as the CLI would give it, plus ``context``.

    Tests and scripts that build the app without the CLI get the same template the CLI writes.
    """
    defaults: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    outdir = context.pop("outdir", None)
    return App(context={**defaults, **context}, outdir=outdir)


def build_app(app: App) -> InferenceRouterStack:
    """Check both configs and compose the stage's stack; a bad config stops synth with the field at fault."""
    stage_name = app.node.try_get_context("stage") or DEFAULT_STAGE
    models = load_models_config()
    stage = load_stage_config(str(stage_name), models=models)
    stack = InferenceRouterStack(
        app,
        stack_name(stage.name),
        models=models,
        stage=stage,
        env=Environment(account=stage.account, region=stage.region),
        description=f"Serverless inference router ({stage.name}): OIP API, router, SageMaker endpoints, alarms",
    )
    add_guardrails(app)
    return stack


def main() -> None:
    app = new_app()
    try:
        build_app(app)
    except ConfigError as error:
        sys.exit(f"config error: {error}")
    app.synth()


if __name__ == "__main__":
    main()
