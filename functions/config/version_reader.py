"""Reading a model's routes and versions: its ``route``, the optional ``versions`` list and ``traffic`` weights.

A model keeps its top-level ``version``/``route``/``artifact`` as its primary version; ``versions`` adds others
(each with its own route and artifact, or a ``shadow`` block) and ``traffic`` splits the requests between the
non-shadow versions in whole percent. Every error names the field, e.g. ``models[0].traffic.2``.

Example:
    >>> reader = VersionReader("models.json")
    >>> reader.traffic({"1": 90, "2": 10}, "models[0].traffic", ("1", "2"), frozenset())
    {'1': 90, '2': 10}
"""

from __future__ import annotations

import re
from typing import Any, Final

from functions.config.config_reader import ConfigReader
from functions.config.datatypes import FLOAT_TYPES
from functions.config.limits import LAMBDA_MAX_BODY_BYTES, SERVERLESS_MAX_BODY_BYTES
from functions.config.model_types import SYNC_TARGETS, RouteConfig, ShadowConfig, TensorSpec, VersionConfig

# SageMaker endpoint names: 1-63 chars, alphanumerics and hyphens (CreateEndpoint's EndpointName pattern).
ENDPOINT_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
# A version names a URL path segment (/v2/models/{m}/versions/{v}) and a metric dimension: keep it plain.
VERSION_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
TRAFFIC_TOTAL: Final[int] = 100


def route_body_limit(route: RouteConfig) -> int:
    """The largest request body the route carries: an endpoint's invocation payload, or the router's own."""
    return SERVERLESS_MAX_BODY_BYTES if route.sync == "serverless" else LAMBDA_MAX_BODY_BYTES


class VersionReader(ConfigReader):
    """Checks routes, versions and traffic weights, naming the field that is wrong."""

    def route(self, raw_value: Any, path: str) -> RouteConfig:
        raw = self.obj(raw_value, path, frozenset({"sync", "serverless_endpoint", "async_endpoint"}))
        sync = raw.get("sync")
        if sync is not None and sync not in SYNC_TARGETS:
            raise self.fail(
                f"{path}.sync", f"{sync!r} is not one of {', '.join(SYNC_TARGETS)} (or null for async-only)"
            )
        serverless = self.optional_string(raw, "serverless_endpoint", path, ENDPOINT_NAME_PATTERN)
        async_endpoint = self.optional_string(raw, "async_endpoint", path, ENDPOINT_NAME_PATTERN)
        if sync == "serverless" and serverless is None:
            raise self.fail(f"{path}.serverless_endpoint", "is required when sync is 'serverless'")
        if sync != "serverless" and serverless is not None:
            raise self.fail(f"{path}.serverless_endpoint", "is only used when sync is 'serverless'")
        if sync is None and async_endpoint is None:
            raise self.fail(path, "declares no route: set sync, async_endpoint or both")
        return RouteConfig(sync, serverless, async_endpoint)

    def versions(
        self,
        raw: dict[str, Any],
        path: str,
        primary: VersionConfig,
        outputs: tuple[TensorSpec, ...],
        max_body_bytes: int,
    ) -> tuple[tuple[VersionConfig, ...], int]:
        """The model's other versions (weights from ``traffic``) and the primary's weight."""
        raw_list = raw.get("versions", [])
        if not isinstance(raw_list, list):
            raise self.fail(f"{path}.versions", "must be a list of versions")
        entries: list[VersionConfig] = []
        seen = {primary.version}
        for index, raw_entry in enumerate(raw_list):
            where = f"{path}.versions[{index}]"
            entry = self.version(raw_entry, where, primary.artifact, outputs)
            if entry.version in seen:
                raise self.fail(f"{where}.version", f"duplicate version {entry.version!r}")
            if route_body_limit(entry.route) < max_body_bytes:
                raise self.fail(
                    f"{where}.route",
                    f"carries bodies up to {route_body_limit(entry.route)} bytes, below the model's "
                    f"limits.max_body_bytes {max_body_bytes}",
                )
            seen.add(entry.version)
            entries.append(entry)
        shadows = frozenset(entry.version for entry in entries if entry.shadow is not None)
        names = (primary.version, *(entry.version for entry in entries))
        raw_traffic = raw.get("traffic")
        weights = (
            {primary.version: TRAFFIC_TOTAL}
            if raw_traffic is None
            else self.traffic(raw_traffic, f"{path}.traffic", names, shadows)
        )
        others = tuple(
            VersionConfig(entry.version, entry.route, entry.artifact, weights.get(entry.version, 0), entry.shadow)
            for entry in entries
        )
        return others, weights.get(primary.version, 0)

    def version(
        self, raw_value: Any, path: str, default_artifact: str | None, outputs: tuple[TensorSpec, ...]
    ) -> VersionConfig:
        raw = self.obj(raw_value, path, frozenset({"version", "route", "artifact", "shadow"}))
        shadow_raw = raw.get("shadow")
        version = self.string(self.required(raw, "version", path), f"{path}.version", VERSION_PATTERN)
        route = self.route(self.required(raw, "route", path), f"{path}.route")
        if shadow_raw is not None and route.sync != "serverless":
            # The shadow worker replays a request with InvokeEndpoint on the version's serverless endpoint: an
            # in-Lambda or async-only shadow would have nothing to answer it.
            raise self.fail(f"{path}.shadow", f"needs a serverless route (route.sync is {route.sync!r})")
        return VersionConfig(
            version=version,
            route=route,
            artifact=self.optional_string(raw, "artifact", path) or default_artifact,
            weight=0,
            shadow=None if shadow_raw is None else self.shadow(shadow_raw, f"{path}.shadow", outputs),
        )

    def shadow(self, raw_value: Any, path: str, outputs: tuple[TensorSpec, ...]) -> ShadowConfig:
        raw = self.obj(raw_value, path, frozenset({"sample_rate", "tolerance"}))
        rate = self.required(raw, "sample_rate", path)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise self.fail(f"{path}.sample_rate", f"{rate!r} must be a fraction in (0, 1]")
        float_outputs = {spec.name for spec in outputs if spec.datatype in FLOAT_TYPES}
        tolerance_raw = self.obj(raw.get("tolerance", {}), f"{path}.tolerance", frozenset(float_outputs))
        tolerance: dict[str, float] = {}
        for name, value in tolerance_raw.items():
            number = self.number(value, f"{path}.tolerance.{name}")
            if number < 0:
                raise self.fail(f"{path}.tolerance.{name}", f"{value!r} must be a non-negative absolute tolerance")
            tolerance[name] = number
        return ShadowConfig(sample_rate=float(rate), tolerance=tolerance)

    def traffic(self, raw_value: Any, path: str, versions: tuple[str, ...], shadows: frozenset[str]) -> dict[str, int]:
        """Whole-percent weights over the non-shadow versions, summing to 100; a version left out gets 0."""
        if not isinstance(raw_value, dict) or not raw_value:
            raise self.fail(path, "must map versions to whole-percent weights summing to 100")
        weights: dict[str, int] = {}
        for version, weight in raw_value.items():
            where = f"{path}.{version}"
            if version not in versions:
                raise self.fail(where, f"is not a version of the model ({', '.join(versions)})")
            if version in shadows:
                raise self.fail(where, "is a shadow version: it gets copies of requests, never traffic weight")
            if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= TRAFFIC_TOTAL:
                raise self.fail(where, f"must be a whole percent from 0 to {TRAFFIC_TOTAL}, got {weight!r}")
            weights[version] = weight
        total = sum(weights.values())
        if total != TRAFFIC_TOTAL:
            raise self.fail(path, f"weights sum to {total}, not {TRAFFIC_TOTAL}")
        return weights
