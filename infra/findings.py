"""The acknowledged cdk-nag findings of a stage, one per line (stack, construct path, rule, reason), for a
security review: ``python -m infra.findings --stage prod``. Kept out of :mod:`infra.guardrails`, which the app
and its constructs import, so that building the app here makes no import cycle.
"""

from __future__ import annotations

import argparse

from infra.app import build_app, new_app
from infra.guardrails import acknowledgments


def main(argv: list[str] | None = None) -> None:
    """Print the stage's acknowledged cdk-nag findings, one per line: stack, construct path, rule, reason."""
    parser = argparse.ArgumentParser(prog="python -m infra.findings", description=main.__doc__)
    parser.add_argument("--stage", default=None, help="the stage to build (default: cdk.json's stage)")
    args = parser.parse_args(argv)
    app = new_app(**({"stage": args.stage} if args.stage else {}))
    stacks = build_app(app)
    # synth runs the cdk-nag plugin, so what is listed is exactly what passed the checks.
    app.synth()
    for stack in stacks.all:
        for finding in acknowledgments(stack):
            path = finding.path.removeprefix(stack.node.path + "/")
            print(f"{stack.stack_name}\t{path}\t{finding.rule}\t{finding.reason}")


if __name__ == "__main__":
    main()
