"""The CDK app: ``cdk synth -c stage=prod`` (default stage: dev). Offline: no lookups, no Docker, no credentials.

cdk.json runs it as ``.venv/bin/python -m infra.app``. A stage is a platform stack (``InferenceRouter-<stage>``)
and one stack per SageMaker-routed model (``InferenceRouter-<stage>-model-<model>``); see README, 'Deploy'.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aws_cdk import App, Environment
from aws_cdk import aws_lambda as lambda_

from functions.config.config_reader import ConfigError
from functions.config.model_types import ModelsConfig
from functions.config.models import load_models_config
from infra.config.loader import load_stage_config
from infra.config.types import DEFAULT_STAGE
from infra.guardrails import add_guardrails
from infra.model_package import DEFAULT_OUTPUT_DIR
from infra.stack_limits import StackLimitError, check_stack_limits, stack_sizes
from infra.stacks.model import ModelStack
from infra.stacks.naming import model_stack_names, platform_stack_name
from infra.stacks.platform import PlatformStack

CDK_JSON: Final[Path] = Path(__file__).resolve().parent.parent / "cdk.json"


@dataclass(frozen=True, slots=True)
class StageStacks:
    """A stage's stacks: the platform and one stack per SageMaker-routed model (by model name)."""

    platform: PlatformStack
    models: dict[str, ModelStack]

    @property
    def all(self) -> list[PlatformStack | ModelStack]:
        return [self.platform, *self.models.values()]


def new_app(**context: Any) -> App:
    """An App with cdk.json's context (feature flags included), as the CLI would give it, plus ``context``.

    Tests and scripts that build the app without the CLI get the same template the CLI writes.
    """
    defaults: dict[str, Any] = json.loads(CDK_JSON.read_text(encoding="utf-8"))["context"]
    outdir = context.pop("outdir", None)
    return App(context={**defaults, **context}, outdir=outdir)


def build_app(
    app: App,
    *,
    models: ModelsConfig | None = None,
    stages_path: Path | None = None,
    router_code: lambda_.Code | None = None,
    model_package_dir: Path = DEFAULT_OUTPUT_DIR,
) -> StageStacks:
    """Check both configs and compose the stage's stacks; a bad config stops synth with the field at fault.

    ``models`` / ``stages_path`` default to the repo's ``functions/models.json`` and ``infra/stages.json``.
    """
    stage_name = str(app.node.try_get_context("stage") or DEFAULT_STAGE)
    models = models if models is not None else load_models_config()
    stage = load_stage_config(stage_name, models=models, path=stages_path)
    environment = Environment(account=stage.account, region=stage.region)
    platform = PlatformStack(
        app,
        platform_stack_name(stage.name),
        models=models,
        stage=stage,
        router_code=router_code,
        env=environment,
        description=f"Serverless inference router ({stage.name}): OIP API, router, async storage, alarm topics",
    )
    deployed = [model for model in models.models if model.name in stage.models]
    names = model_stack_names(stage.name, [model.name for model in deployed])
    model_stacks: dict[str, ModelStack] = {}
    for model in deployed:
        stack = ModelStack(
            app,
            names[model.name],
            models=models,
            model=model,
            stage=stage,
            model_package_dir=model_package_dir,
            env=environment,
            description=f"Inference router ({stage.name}): SageMaker endpoints and alarms of model {model.name}",
        )
        # The platform first: it writes the SSM parameters and owns the topics this stack's endpoints use.
        stack.add_stack_dependency(platform, "reads the platform's SSM parameters (async storage, alarm topics)")
        model_stacks[model.name] = stack
    add_guardrails(app)
    return StageStacks(platform, model_stacks)


def main() -> None:
    app = new_app()
    try:
        stacks = build_app(app)
        assembly = app.synth()
        check_stack_limits(stack_sizes(assembly), platform_stack=stacks.platform.stack_name)
    except ConfigError as error:
        sys.exit(f"config error: {error}")
    except StackLimitError as error:
        sys.exit(f"stack limits:\n{error}")


if __name__ == "__main__":
    main()
