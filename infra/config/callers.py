"""The stage's caller policy (``caller_policy``), checked at synth as the router will read it, and sized to fit.

Lambda allows 4 KB for all of a function's environment variables together (names and values):
https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html. The router's other variables take
under 900 bytes (prod's template: 12 variables, 260 bytes besides the bucket and table names, counted at
their longest, 63 and 255 characters), so the policy gets at most :data:`CALLER_POLICY_MAX_ENV_BYTES`: over
the limit, a deploy would fail minutes in, naming no field.
"""

from __future__ import annotations

from typing import Any, Final

from functions.config.caller_policy import CallerPolicy, parse_caller_policy
from functions.config.model_types import ModelsConfig
from infra.config.reader import StageReader

CALLER_POLICY_VARIABLE: Final[str] = "CALLER_POLICY"
CALLER_POLICY_MAX_ENV_BYTES: Final[int] = 2048


def read_caller_policy(reader: StageReader, raw: Any, models: ModelsConfig) -> CallerPolicy | None:
    """None (no policy: every authenticated caller, every model) or the checked policy, naming its models."""
    if raw is None:
        return None
    policy = parse_caller_policy(raw, reader.fail, model_names=[model.name for model in models.models])
    size = len(CALLER_POLICY_VARIABLE) + len(policy.to_env().encode())
    if size > CALLER_POLICY_MAX_ENV_BYTES:
        raise reader.fail(
            "caller_policy",
            f"takes {size} bytes as the router's {CALLER_POLICY_VARIABLE} variable, over its "
            f"{CALLER_POLICY_MAX_ENV_BYTES} of Lambda's 4 KB for all variables; name callers by pattern "
            '(role/team-*) or grant models by "*"',
        )
    return policy
