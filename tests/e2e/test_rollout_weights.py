"""Weighted versions over real HTTP against the local stack (its own runtime serving both versions' endpoints,
local/models.rollout.json: iris 1 and 2 at 90/10, 3 a shadow): the share of version 2 over 2,000 distinct routing keys
holds within the binomial tolerance, a sticky X-Routing-Key always meets the same version, a version route pins."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from local.stack import LocalStack, start_local_stack

ROLLOUT_CONFIG = Path(__file__).resolve().parents[2] / "local" / "models.rollout.json"
INFER = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}
REQUESTS = 2_000
SHARE_OF_2 = 0.10


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    started = start_local_stack(api_port=0, runtime_port=0, config_path=str(ROLLOUT_CONFIG), async_options=None)
    try:
        yield started
    finally:
        started.stop()


def served_version(stack: LocalStack, path: str, headers: dict[str, str] | None = None) -> str:
    request = urllib.request.Request(
        f"{stack.api.url}{path}",
        data=json.dumps(INFER).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{path}: {error.code} {error.read()!r}") from None
    version: str = answer["model_version"]
    return version


def test_the_weights_hold_within_the_binomial_tolerance(stack: LocalStack) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        versions = list(
            pool.map(lambda n: served_version(stack, "/v2/models/iris/infer", {"X-Routing-Key": f"user-{n}"}),
                     range(REQUESTS))
        )  # fmt: skip
    tolerance = 4 * math.sqrt(SHARE_OF_2 * (1 - SHARE_OF_2) / REQUESTS)  # 4 sigma: ~0.0268 at 2,000 requests
    assert set(versions) == {"1", "2"}
    assert abs(versions.count("2") / REQUESTS - SHARE_OF_2) <= tolerance


def test_a_sticky_routing_key_always_meets_the_same_version(stack: LocalStack) -> None:
    for key in ("alice", "bob", "carol", "dave", "erin"):
        seen = {served_version(stack, "/v2/models/iris/infer", {"X-Routing-Key": key}) for _ in range(10)}
        assert len(seen) == 1


def test_a_version_route_pins_the_version(stack: LocalStack) -> None:
    assert {
        served_version(stack, "/v2/models/iris/versions/2/infer", {"X-Routing-Key": f"k{n}"}) for n in range(20)
    } == {"2"}
