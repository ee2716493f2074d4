"""The drift job's stage knobs, ``drift``: when it runs and what counts as drifted.

``schedule`` is an EventBridge schedule expression: ``rate(<n> <unit>)`` (a singular unit for 1, plural
otherwise, as EventBridge requires) or ``cron(<6 fields>)``. ``psi_threshold`` marks a feature drifted and is
the threshold of the ``feature_drift`` ticket (the loader requires the two to agree); ``ks_p_value`` marks a
continuous feature drifted when the KS test's p-value falls below it; ``window_days`` is how many days before
the run the job reads.
"""

from __future__ import annotations

import re
from typing import Any, Final

from infra.config.reader import StageReader
from infra.config.types import DriftConfig

RATE_PATTERN: Final[re.Pattern[str]] = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minutes?|hours?|days?)\)$")
CRON_PATTERN: Final[re.Pattern[str]] = re.compile(r"^cron\(\S+( \S+){5}\)$")
MAX_WINDOW_DAYS: Final[int] = 31
DRIFT_KEYS: Final[frozenset[str]] = frozenset({"schedule", "psi_threshold", "ks_p_value", "window_days"})


def read_schedule(reader: StageReader, raw_value: Any, path: str) -> str:
    expression = reader.string(raw_value, path)
    rate = RATE_PATTERN.match(expression)
    if rate is not None:
        singular = rate["value"] == "1"
        if singular == rate["unit"].endswith("s"):
            raise reader.fail(
                path,
                f"{expression!r}: EventBridge wants a singular unit for 1 and a plural one otherwise "
                "(rate(1 day), rate(2 days))",
            )
        return expression
    if CRON_PATTERN.match(expression) is None:
        raise reader.fail(
            path,
            f"{expression!r} is not an EventBridge schedule: rate(<n> minute(s)|hour(s)|day(s)) or cron(<6 fields>)",
        )
    return expression


def read_drift(reader: StageReader, raw_value: Any) -> DriftConfig:
    path = "drift"
    raw = reader.obj(raw_value, path, DRIFT_KEYS)
    return DriftConfig(
        schedule=read_schedule(reader, raw.get("schedule", "rate(1 day)"), f"{path}.schedule"),
        psi_threshold=reader.number(raw.get("psi_threshold", 0.2), f"{path}.psi_threshold", 0, 10, low_open=True),
        ks_p_value=reader.number(raw.get("ks_p_value", 0.01), f"{path}.ks_p_value", 0, 0.5, low_open=True),
        window_days=reader.integer(raw.get("window_days", 1), f"{path}.window_days", 1, MAX_WINDOW_DAYS),
    )
