"""Synthesize each stage once per test session, with cdk-nag attached, and share the templates."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers.synth import Synthesized, synthesize


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Synthesized]:
    cache: dict[str, Synthesized] = {}

    def get(stage: str) -> Synthesized:
        if stage not in cache:
            cache[stage] = synthesize(stage, tmp_path_factory.mktemp(f"cdk-{stage}"))
        return cache[stage]

    return get


@pytest.fixture(scope="session")
def dev(synth: Callable[[str], Synthesized]) -> Synthesized:
    return synth("dev")


@pytest.fixture(scope="session")
def prod(synth: Callable[[str], Synthesized]) -> Synthesized:
    return synth("prod")
