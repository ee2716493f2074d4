"""The router's warm capacity: provisioned concurrency autoscaling on the live alias, or SnapStart instead.

Application Auto Scaling changes the alias's provisioned concurrency between ``min_capacity`` and
``max_capacity``, by target tracking on ``LambdaProvisionedConcurrencyUtilization`` and/or by scheduled actions
(UTC cron). SnapStart and provisioned concurrency exclude each other on one function version (Lambda's
SnapStart docs: "You can't use SnapStart and provisioned concurrency on the same function version").
"""

from __future__ import annotations

import re
from typing import Any, Final

from infra.config.reader import StageReader
from infra.config.types import RouterPcAutoscaling, ScheduledCapacity

# Application Auto Scaling schedule expressions: cron(minutes hours day-of-month month day-of-week year), UTC.
CRON_PATTERN: Final[re.Pattern[str]] = re.compile(r"^cron\((?P<fields>[^()]+)\)$")
CRON_FIELDS: Final[tuple[tuple[str, re.Pattern[str], int, int], ...]] = (
    ("minutes", re.compile(r"^[0-9*,/-]+$"), 0, 59),
    ("hours", re.compile(r"^[0-9*,/-]+$"), 0, 23),
    ("day-of-month", re.compile(r"^(\?|[0-9*,/LW-]+)$"), 1, 31),
    ("month", re.compile(r"^([0-9*,/-]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC)+$", re.IGNORECASE), 1, 12),
    ("day-of-week", re.compile(r"^(\?|([0-7*,/L#-]|SUN|MON|TUE|WED|THU|FRI|SAT)+)$", re.IGNORECASE), 1, 7),
    ("year", re.compile(r"^[0-9*,/-]+$"), 1970, 2199),
)
SCHEDULE_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9-]{1,64}$")


def check_cron(reader: StageReader, value: Any, path: str) -> str:
    """As much of Application Auto Scaling's cron syntax as can be checked offline; the rest fails at deploy."""
    expression = reader.string(value, path)
    matched = CRON_PATTERN.match(expression)
    if matched is None:
        raise reader.fail(path, f"{expression!r} is not a schedule expression like 'cron(0 7 ? * MON-FRI *)' (UTC)")
    fields = matched["fields"].split()
    if len(fields) != len(CRON_FIELDS):
        raise reader.fail(
            path,
            f"{expression!r} has {len(fields)} fields; Application Auto Scaling cron has 6: "
            + " ".join(name for name, *_ in CRON_FIELDS),
        )
    for text, (name, pattern, low, high) in zip(fields, CRON_FIELDS, strict=True):
        numbers = [int(number) for number in re.findall(r"\d+", text.split("/")[0].split("#")[0])]
        if pattern.match(text) is None or any(not low <= number <= high for number in numbers):
            raise reader.fail(path, f"{expression!r}: {name} field {text!r} is not valid ({low}-{high})")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise reader.fail(path, f"{expression!r}: exactly one of day-of-month and day-of-week must be '?'")
    return expression


def _capacity_range(reader: StageReader, raw: dict[str, Any], path: str, reserved: int | None) -> tuple[int, int]:
    # At least 1: the alias then always has a provisioned concurrency config, which the PC alarms watch.
    low = reader.integer(reader.field(raw, "min_capacity", path), f"{path}.min_capacity", 1)
    high = reader.integer(reader.field(raw, "max_capacity", path), f"{path}.max_capacity", 1)
    if low > high:
        raise reader.fail(f"{path}.min_capacity", f"{low} is above max_capacity {high}")
    if reserved is not None and high > reserved:
        raise reader.fail(
            f"{path}.max_capacity",
            f"{high} is above router.reserved_concurrency {reserved}; Lambda cannot keep more warm than it may run",
        )
    return low, high


def read_pc_autoscaling(
    reader: StageReader, raw_value: Any, path: str, *, provisioned: int, reserved: int | None
) -> RouterPcAutoscaling | None:
    if raw_value is None:
        return None
    raw = reader.obj(raw_value, path, frozenset({"min_capacity", "max_capacity", "target_utilization", "schedule"}))
    low, high = _capacity_range(reader, raw, path, reserved)
    if not low <= provisioned <= high:
        raise reader.fail(
            path,
            f"min_capacity {low} <= router.provisioned_concurrency {provisioned} <= max_capacity {high} fails "
            "(provisioned_concurrency is the initial value autoscaling starts from)",
        )
    target_raw = raw.get("target_utilization")
    target = (
        None if target_raw is None else reader.number(target_raw, f"{path}.target_utilization", 0, 1, low_open=True)
    )
    if target == 1.0:
        raise reader.fail(f"{path}.target_utilization", "1.0 is outside (0, 1): a full alias spills over at once")
    schedule_raw = raw.get("schedule", [])
    if not isinstance(schedule_raw, list):
        raise reader.fail(f"{path}.schedule", f"must be a list, got {type(schedule_raw).__name__}")
    schedule: list[ScheduledCapacity] = []
    for index, entry_raw in enumerate(schedule_raw):
        entry_path = f"{path}.schedule[{index}]"
        entry = reader.obj(entry_raw, entry_path, frozenset({"name", "cron", "min_capacity", "max_capacity"}))
        name = reader.string(
            reader.field(entry, "name", entry_path),
            f"{entry_path}.name",
            SCHEDULE_NAME_PATTERN,
            "1-64 letters, digits, '-'",
        )
        if any(existing.name == name for existing in schedule):
            raise reader.fail(f"{entry_path}.name", f"{name!r} is used by an earlier scheduled action")
        cron = check_cron(reader, reader.field(entry, "cron", entry_path), f"{entry_path}.cron")
        entry_low, entry_high = _capacity_range(reader, entry, entry_path, reserved)
        schedule.append(ScheduledCapacity(name, cron, entry_low, entry_high))
    if target is None and not schedule:
        raise reader.fail(path, "scales on nothing: set target_utilization and/or a schedule (or set it to null)")
    return RouterPcAutoscaling(low, high, target, tuple(schedule))


def check_snap_start(
    reader: StageReader, snap_start: bool, *, provisioned: int, autoscaling: RouterPcAutoscaling | None
) -> None:
    if snap_start and (provisioned > 0 or autoscaling is not None):
        raise reader.fail(
            "router.snap_start",
            f"true together with router.provisioned_concurrency {provisioned}"
            + (" and router.provisioned_concurrency_autoscaling" if autoscaling is not None else "")
            + ": Lambda cannot use SnapStart and provisioned concurrency on the same function version; keep one",
        )
