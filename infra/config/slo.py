"""The stage's service level objectives (``slo``), the burn-rate pages on them, and the router's latency targets.

Every model gets the default objectives unless ``slo.models.<name>`` overrides some of them. The burn-rate
pages follow Google's SRE workbook (chapter "Alerting on SLOs", multiwindow, multi-burn-rate alerts): a pair
pages when both its long and its short window burn the error budget faster than its rate; the short window
makes the page clear soon after the burn stops.
"""

from __future__ import annotations

import json
from typing import Any, Final

from functions.config.limits import ALARM_MAX_WINDOW_S
from functions.config.model_types import ModelsConfig
from functions.config.telemetry import LATENCY_TARGET_DEFAULT_KEY, LATENCY_TARGETS_VARIABLE
from infra.config.reader import StageReader
from infra.config.types import BurnRateWindow, SloConfig, SloTargets

# Application Signals SLOs take a rolling interval of 1 to 36 days (AWS::ApplicationSignals::
# ServiceLevelObjective RollingInterval, DurationUnit DAY).
SLO_MAX_ROLLING_DAYS: Final[int] = 36
# The budget of LATENCY_TARGETS_MS among the router's variables (Lambda's 4 KB for all of them): the caller
# policy takes at most 2048 bytes (infra/config/callers.py), the others under 900.
LATENCY_TARGETS_MAX_ENV_BYTES: Final[int] = 1024
TARGET_KEYS: Final[frozenset[str]] = frozenset({"availability_target", "latency_target_ms", "latency_target"})


def _targets(reader: StageReader, raw_value: Any, path: str, base: SloTargets | None) -> SloTargets:
    raw = reader.obj(raw_value, path, TARGET_KEYS)

    def share(key: str, fallback: float | None) -> float:
        if key not in raw and fallback is not None:
            return fallback
        # A target of 1 leaves no error budget: every burn rate would be infinite.
        return reader.number(reader.field(raw, key, path), f"{path}.{key}", 0, 0.99999, low_open=True)

    latency_ms = (
        base.latency_target_ms
        if "latency_target_ms" not in raw and base is not None
        else reader.integer(reader.field(raw, "latency_target_ms", path), f"{path}.latency_target_ms", 1, 900_000)
    )
    return SloTargets(
        availability_target=share("availability_target", base.availability_target if base else None),
        latency_target_ms=latency_ms,
        latency_target=share("latency_target", base.latency_target if base else None),
    )


def _burn_rate_window(reader: StageReader, raw_value: Any, path: str) -> BurnRateWindow:
    raw = reader.obj(raw_value, path, frozenset({"long_window_s", "short_window_s", "burn_rate"}))
    long_s = reader.integer(reader.field(raw, "long_window_s", path), f"{path}.long_window_s", 60, ALARM_MAX_WINDOW_S)
    short_s = reader.integer(reader.field(raw, "short_window_s", path), f"{path}.short_window_s", 60, long_s)
    for key, seconds in (("long_window_s", long_s), ("short_window_s", short_s)):
        if seconds % 60:
            raise reader.fail(f"{path}.{key}", f"{seconds} must be a multiple of 60 (each window is one alarm period)")
    if short_s >= long_s:
        raise reader.fail(f"{path}.short_window_s", f"{short_s} must be shorter than long_window_s {long_s}")
    rate = reader.number(reader.field(raw, "burn_rate", path), f"{path}.burn_rate", 1, 1000)
    return BurnRateWindow(long_s, short_s, rate)


def read_slo(reader: StageReader, raw_value: Any, models: ModelsConfig) -> SloConfig:
    path = "slo"
    keys = {"rolling_days", "min_requests", "burn_rate_pages", "models", *TARGET_KEYS}
    raw = reader.obj(raw_value, path, frozenset(keys))
    defaults = _targets(reader, {key: raw[key] for key in TARGET_KEYS if key in raw}, path, None)
    overrides = reader.obj(raw.get("models", {}), f"{path}.models")
    known = {model.name for model in models.models}
    for name in overrides:
        if name not in known:
            raise reader.fail(f"{path}.models.{name}", f"no model named {name!r} in {models.source}")
    pages_raw = reader.field(raw, "burn_rate_pages", path)
    if not isinstance(pages_raw, list) or not pages_raw:
        raise reader.fail(f"{path}.burn_rate_pages", "must be a non-empty list of window pairs")
    slo = SloConfig(
        rolling_days=reader.integer(
            reader.field(raw, "rolling_days", path), f"{path}.rolling_days", 1, SLO_MAX_ROLLING_DAYS
        ),
        defaults=defaults,
        models={
            model.name: _targets(reader, overrides.get(model.name, {}), f"{path}.models.{model.name}", defaults)
            for model in models.models
        },
        burn_rate_pages=tuple(
            _burn_rate_window(reader, pair, f"{path}.burn_rate_pages[{index}]") for index, pair in enumerate(pages_raw)
        ),
        min_requests=reader.integer(reader.field(raw, "min_requests", path), f"{path}.min_requests", 1),
    )
    for index, pair in enumerate(slo.burn_rate_pages):
        for name, targets in slo.models.items():
            for objective in ("availability_target", "latency_target"):
                # A threshold of 1 or more never fires: the error ratio cannot exceed 1.
                if pair.burn_rate * (1 - getattr(targets, objective)) >= 1:
                    raise reader.fail(
                        f"{path}.burn_rate_pages[{index}].burn_rate",
                        f"{pair.burn_rate:g} x the error budget of {name}'s {objective} is 100% or more: "
                        "that page could never fire",
                    )
    size = len(LATENCY_TARGETS_VARIABLE) + len(latency_targets_env(slo).encode())
    if size > LATENCY_TARGETS_MAX_ENV_BYTES:
        raise reader.fail(
            f"{path}.models",
            f"the latency targets take {size} bytes as the router's {LATENCY_TARGETS_VARIABLE} variable, over its "
            f"{LATENCY_TARGETS_MAX_ENV_BYTES} of Lambda's 4 KB for all variables: override latency_target_ms "
            "for fewer models (the others take the stage default)",
        )
    return slo


def latency_targets_env(slo: SloConfig) -> str:
    """LATENCY_TARGETS_MS: the stage default under ``"*"`` and only the models that override it, so that a
    model added with the default target changes nothing in the platform stack."""
    default = slo.defaults.latency_target_ms
    overrides = {
        name: targets.latency_target_ms
        for name, targets in sorted(slo.models.items())
        if targets.latency_target_ms != default
    }
    return json.dumps({LATENCY_TARGET_DEFAULT_KEY: default, **overrides}, separators=(",", ":"))
