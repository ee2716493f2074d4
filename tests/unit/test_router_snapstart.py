"""The router's after-restore hook: environments restored from one snapshot must not share retry jitter."""

from __future__ import annotations

import random
import sys
import types
from collections.abc import Callable

import pytest

from functions.handlers.router.snapstart import register_after_restore, reseed_after_restore


def restored_pair() -> tuple[random.Random, random.Random]:
    """Two environments restored from one snapshot: the same generator state in both."""
    snapshot = random.Random()
    first, second = random.Random(), random.Random()
    first.setstate(snapshot.getstate())
    second.setstate(snapshot.getstate())
    return first, second


def draws(rng: random.Random) -> list[float]:
    return [rng.random() for _ in range(8)]


def test_without_the_hook_restored_environments_draw_the_same_jitter() -> None:
    first, second = restored_pair()
    assert draws(first) == draws(second)


def test_the_hook_gives_each_restored_environment_its_own_jitter() -> None:
    first, second = restored_pair()
    reseed_after_restore(first)()
    reseed_after_restore(second)()
    assert draws(first) != draws(second)


def test_the_hook_reseeds_the_random_module_too() -> None:
    state = random.getstate()
    try:
        random.seed(7)
        expected = random.random()
        random.seed(7)
        reseed_after_restore()()
        assert random.random() != expected
    finally:
        random.setstate(state)


def test_registers_with_the_runtime_hooks_where_the_runtime_has_them(monkeypatch: pytest.MonkeyPatch) -> None:
    registered: list[Callable[[], None]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    hook = reseed_after_restore(random.Random())
    assert register_after_restore(hook) is True
    assert registered == [hook]


def test_outside_lambda_nothing_registers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", None)  # import raises ImportError
    assert register_after_restore(reseed_after_restore()) is False
