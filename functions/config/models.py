"""Reading the model and route config: one file read by the router at cold start and by the CDK app at synth.

Every field is checked when the file is loaded; an invalid file raises
:class:`~functions.config.config_reader.ConfigError` naming the file and the field, e.g.
``functions/models.json: models[0].inputs[0].datatype: 'FP33' is not one of ...``.

Example:
    >>> config = load_models_config()
    >>> config.model("iris").inputs[0].shape
    (-1, 4)
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Final

from functions.config.capture_reader import CaptureReader
from functions.config.config_reader import read_json_file
from functions.config.contract_reader import ContractReader
from functions.config.datatypes import DATATYPES, INTEGER_BOUNDS
from functions.config.limits import LAMBDA_MAX_BODY_BYTES
from functions.config.model_types import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_DELAY_MS,
    BatchingConfig,
    LimitsConfig,
    ModelConfig,
    ModelsConfig,
    ResilienceConfig,
    RouteConfig,
    ServerInfo,
    TensorSpec,
    ValueRange,
    VersionConfig,
)
from functions.config.version_reader import ENDPOINT_NAME_PATTERN, VersionReader, route_body_limit

# ENDPOINT_NAME_PATTERN is read with the routes (version_reader) and stays importable from here.
__all__ = [
    "CONTAINER_MAX_BATCH_ROWS",
    "DEFAULT_CONFIG_PATH",
    "ENDPOINT_NAME_PATTERN",
    "MAX_BATCH_SIZE_LIMIT",
    "MAX_QUEUE_DELAY_MS_LIMIT",
    "MODEL_NAME_PATTERN",
    "SIGNATURE_FIELDS",
    "load_models_config",
    "parse_model_config",
    "parse_model_signature",
    "parse_models_config",
    "serving_signature",
]

DEFAULT_CONFIG_PATH: Final[Path] = Path(__file__).resolve().parent.parent / "models.json"
MODEL_NAME_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
# Project bounds on the batching block (serving/batching.py): a bigger batch or a longer wait is a typo.
MAX_BATCH_SIZE_LIMIT: Final[int] = 4096
MAX_QUEUE_DELAY_MS_LIMIT: Final[float] = 1000.0
# What a serving container reads from signature.json: the model's identity and tensors, nothing of the
# router's (route, limits, resilience), so router-only config changes leave the artifact and CfnModel alone.
SIGNATURE_FIELDS: Final[tuple[str, ...]] = ("name", "version", "platform", "inputs", "outputs")
# A container never sees a request the router did not validate against the model's limits first (sync and
# async alike), so its own copy of the model holds no row limit and the largest body any route carries.
CONTAINER_MAX_BATCH_ROWS: Final[int] = 2**31 - 1


class _Reader(VersionReader, CaptureReader, ContractReader):
    """Walks the raw model config, checking each field and naming its path when one is wrong."""

    def tensor(self, raw_value: Any, path: str, *, is_input: bool) -> TensorSpec:
        allowed = {"name", "datatype", "shape"} | ({"range", "allow_non_finite"} if is_input else {"contract"})
        raw = self.obj(raw_value, path, frozenset(allowed))
        name = self.string(self.required(raw, "name", path), f"{path}.name")
        datatype = self.required(raw, "datatype", path)
        if datatype not in DATATYPES:
            raise self.fail(f"{path}.datatype", f"{datatype!r} is not one of {', '.join(DATATYPES)}")
        shape_raw = self.required(raw, "shape", path)
        if not isinstance(shape_raw, list) or not shape_raw:
            raise self.fail(f"{path}.shape", "must be a non-empty list of dimensions (-1 for a free dimension)")
        for index, dim in enumerate(shape_raw):
            if isinstance(dim, bool) or not isinstance(dim, int) or (dim < 1 and dim != -1):
                raise self.fail(f"{path}.shape[{index}]", f"must be a positive integer or -1, got {dim!r}")
        value_range = self.value_range(raw.get("range"), f"{path}.range", datatype)
        allow_non_finite = raw.get("allow_non_finite", False)
        if not isinstance(allow_non_finite, bool):
            raise self.fail(f"{path}.allow_non_finite", f"must be true or false, got {allow_non_finite!r}")
        contract = self.contract(raw.get("contract"), f"{path}.contract", datatype, tuple(shape_raw))
        return TensorSpec(name, datatype, tuple(shape_raw), value_range, allow_non_finite, contract)

    def value_range(self, raw_value: Any, path: str, datatype: str) -> ValueRange | None:
        if raw_value is None:
            return None
        if datatype in ("BOOL", "BYTES"):
            raise self.fail(path, f"a range applies to numeric datatypes, not {datatype}")
        minimum, maximum = self.min_max(raw_value, path)
        bounds = INTEGER_BOUNDS.get(datatype)
        if bounds is not None and (
            (minimum is not None and minimum < bounds[0]) or (maximum is not None and maximum > bounds[1])
        ):
            raise self.fail(path, f"lies outside what {datatype} can hold ({bounds[0]}..{bounds[1]})")
        return ValueRange(minimum, maximum)

    def tensors(self, raw: dict[str, Any], key: str, path: str, *, is_input: bool) -> tuple[TensorSpec, ...]:
        values = self.required(raw, key, path)
        if not isinstance(values, list) or not values:
            raise self.fail(f"{path}.{key}", "must be a non-empty list")
        specs = tuple(
            self.tensor(value, f"{path}.{key}[{index}]", is_input=is_input) for index, value in enumerate(values)
        )
        seen: set[str] = set()
        for index, spec in enumerate(specs):
            if spec.name in seen:
                raise self.fail(f"{path}.{key}[{index}].name", f"duplicate tensor name {spec.name!r}")
            seen.add(spec.name)
        return specs

    def limits(self, raw_value: Any, path: str, route: RouteConfig) -> LimitsConfig:
        raw = self.obj(raw_value, path, frozenset({"max_body_bytes", "max_batch_rows"}))
        route_limit = route_body_limit(route)
        return LimitsConfig(
            max_body_bytes=self.positive_int(
                self.required(raw, "max_body_bytes", path), f"{path}.max_body_bytes", route_limit
            ),
            max_batch_rows=self.positive_int(self.required(raw, "max_batch_rows", path), f"{path}.max_batch_rows"),
        )

    def model(self, raw_value: Any, path: str) -> ModelConfig:
        keys = {
            "name", "version", "platform", "artifact", "inputs", "outputs", "route", "limits", "resilience", "batching",
            "versions", "traffic", "capture",
        }  # fmt: skip
        raw = self.obj(raw_value, path, frozenset(keys))
        route = self.route(self.required(raw, "route", path), f"{path}.route")
        inputs = self.tensors(raw, "inputs", path, is_input=True)
        outputs = self.tensors(raw, "outputs", path, is_input=False)
        resilience = self.resilience(raw.get("resilience", {}), f"{path}.resilience", route, outputs)
        free_batch_dim = all(spec.has_free_batch_dim for spec in (*inputs, *outputs))
        version = self.string(self.required(raw, "version", path), f"{path}.version")
        artifact = self.optional_string(raw, "artifact", path)
        limits = self.limits(self.required(raw, "limits", path), f"{path}.limits", route)
        primary = VersionConfig(version, route, artifact, weight=0)
        others, primary_weight = self.versions(raw, path, primary, outputs, limits.max_body_bytes)
        return ModelConfig(
            name=self.string(self.required(raw, "name", path), f"{path}.name", MODEL_NAME_PATTERN),
            version=version,
            platform=self.string(self.required(raw, "platform", path), f"{path}.platform"),
            artifact=artifact,
            inputs=inputs,
            outputs=outputs,
            route=route,
            limits=limits,
            resilience=resilience,
            batching=self.batching(raw.get("batching"), f"{path}.batching", route, free_batch_dim=free_batch_dim),
            other_versions=others,
            primary_weight=primary_weight,
            capture=self.capture(raw.get("capture"), f"{path}.capture", tuple(spec.name for spec in inputs)),
        )

    def batching(self, raw_value: Any, path: str, route: RouteConfig, *, free_batch_dim: bool) -> BatchingConfig:
        if raw_value is None:
            return BatchingConfig(enabled=free_batch_dim)
        raw = self.obj(raw_value, path, frozenset({"enabled", "max_batch_size", "max_queue_delay_ms"}))
        if route.serverless_endpoint is None and route.async_endpoint is None:
            raise self.fail(
                path,
                "configures the SageMaker serving container, but the model has no endpoint "
                f"(route.sync is {route.sync!r} and no async_endpoint): remove the block",
            )
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise self.fail(f"{path}.enabled", f"must be true or false, got {enabled!r}")
        if enabled and not free_batch_dim:
            raise self.fail(
                path,
                "batching needs a free batch dim (-1 first) on every input and output, and this model has a fixed "
                'one: set "enabled": false or declare dim 0 as -1',
            )
        size = self.positive_int(raw.get("max_batch_size", DEFAULT_MAX_BATCH_SIZE), f"{path}.max_batch_size")
        if size > MAX_BATCH_SIZE_LIMIT:
            raise self.fail(f"{path}.max_batch_size", f"{size} is above the most allowed, {MAX_BATCH_SIZE_LIMIT}")
        delay = self.number(raw.get("max_queue_delay_ms", DEFAULT_MAX_QUEUE_DELAY_MS), f"{path}.max_queue_delay_ms")
        if not 0 <= delay <= MAX_QUEUE_DELAY_MS_LIMIT:
            raise self.fail(
                f"{path}.max_queue_delay_ms", f"{delay:g} must be between 0 and {MAX_QUEUE_DELAY_MS_LIMIT:g} ms"
            )
        return BatchingConfig(enabled=enabled, max_batch_size=size, max_queue_delay_ms=delay)

    def signature(self, raw_value: Any, path: str) -> ModelConfig:
        """A model as its serving container sees it (signature.json): identity and tensors only."""
        raw = self.obj(raw_value, path, frozenset(SIGNATURE_FIELDS))
        return ModelConfig(
            name=self.string(self.required(raw, "name", path), f"{path}.name", MODEL_NAME_PATTERN),
            version=self.string(self.required(raw, "version", path), f"{path}.version"),
            platform=self.string(self.required(raw, "platform", path), f"{path}.platform"),
            artifact=None,
            inputs=self.tensors(raw, "inputs", path, is_input=True),
            outputs=self.tensors(raw, "outputs", path, is_input=False),
            # The container is the end of a route, not a router: no route of its own to choose.
            route=RouteConfig(sync=None, serverless_endpoint=None, async_endpoint=None),
            limits=LimitsConfig(max_body_bytes=LAMBDA_MAX_BODY_BYTES, max_batch_rows=CONTAINER_MAX_BATCH_ROWS),
        )

    def resilience(
        self, raw_value: Any, path: str, route: RouteConfig, outputs: tuple[TensorSpec, ...]
    ) -> ResilienceConfig:
        sections = {"retry", "breaker", "fallback", "spill_async"}
        raw = self.obj(raw_value, path, frozenset(sections))
        retry = self.obj(
            raw.get("retry", {}), f"{path}.retry", frozenset({"max_attempts", "base_delay_ms", "max_delay_ms"})
        )
        breaker_keys = {"failure_threshold", "failure_rate", "window_s", "min_calls", "cooldown_s"}
        breaker = self.obj(raw.get("breaker", {}), f"{path}.breaker", frozenset(breaker_keys))
        defaults = ResilienceConfig()

        def whole(section: dict[str, Any], key: str, section_path: str, default: int, upper: int) -> int:
            value = self.positive_int(section.get(key, default), f"{section_path}.{key}")
            if value > upper:
                raise self.fail(f"{section_path}.{key}", f"{value} is above the most allowed, {upper}")
            return value

        rate = breaker.get("failure_rate", defaults.breaker_failure_rate)
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 1:
            raise self.fail(f"{path}.breaker.failure_rate", f"{rate!r} must be a fraction in (0, 1]")
        fallback_raw = raw.get("fallback")
        fallback: str | None = None
        static: dict[str, Any] | None = None
        if fallback_raw == "last_good":
            fallback = "last_good"
        elif isinstance(fallback_raw, dict) and set(fallback_raw) == {"static"}:
            # The model's name and version are the model's own: the fallback declares only what it answers.
            static = self.obj(fallback_raw["static"], f"{path}.fallback.static", frozenset({"outputs", "parameters"}))
            self.static_outputs(static.get("outputs"), f"{path}.fallback.static.outputs", outputs)
            if "parameters" in static and not isinstance(static["parameters"], dict):
                raise self.fail(f"{path}.fallback.static.parameters", "must be an object")
            fallback = "static"
        elif fallback_raw is not None:
            raise self.fail(
                f"{path}.fallback", f"{fallback_raw!r} is not null, 'last_good' or {{'static': <OIP response>}}"
            )
        spill = raw.get("spill_async", False)
        if not isinstance(spill, bool):
            raise self.fail(f"{path}.spill_async", f"must be true or false, got {spill!r}")
        if spill and not route.allows_async:
            raise self.fail(f"{path}.spill_async", "needs route.async_endpoint to spill to")
        return ResilienceConfig(
            max_attempts=whole(retry, "max_attempts", f"{path}.retry", defaults.max_attempts, 10),
            base_delay_ms=whole(retry, "base_delay_ms", f"{path}.retry", defaults.base_delay_ms, 10_000),
            max_delay_ms=whole(retry, "max_delay_ms", f"{path}.retry", defaults.max_delay_ms, 10_000),
            breaker_failure_threshold=whole(
                breaker, "failure_threshold", f"{path}.breaker", defaults.breaker_failure_threshold, 1000
            ),
            breaker_failure_rate=float(rate),
            breaker_window_s=whole(breaker, "window_s", f"{path}.breaker", defaults.breaker_window_s, 3600),
            breaker_min_calls=whole(breaker, "min_calls", f"{path}.breaker", defaults.breaker_min_calls, 10_000),
            breaker_cooldown_s=whole(breaker, "cooldown_s", f"{path}.breaker", defaults.breaker_cooldown_s, 3600),
            fallback=fallback,
            static_response=static,
            spill_async=spill,
        )

    def static_outputs(self, raw_value: Any, path: str, declared: tuple[TensorSpec, ...]) -> None:
        """A static fallback answers OIP outputs the model declares: known names, their datatype, a shape that
        fits the declared one (-1 free), as many data elements as the shape holds, and the output's contract."""
        if not isinstance(raw_value, list) or not raw_value:
            raise self.fail(path, "must list the OIP outputs the fallback answers")
        by_name = {spec.name: spec for spec in declared}
        seen: set[str] = set()
        for index, raw_output in enumerate(raw_value):
            where = f"{path}[{index}]"
            output = self.obj(raw_output, where, frozenset({"name", "datatype", "shape", "data", "parameters"}))
            name = self.required(output, "name", where)
            spec = by_name.get(name) if isinstance(name, str) else None
            if spec is None:
                raise self.fail(f"{where}.name", f"{name!r} is not an output of the model ({', '.join(by_name)})")
            if name in seen:
                raise self.fail(f"{where}.name", f"output {name!r} is listed twice")
            seen.add(name)
            if self.required(output, "datatype", where) != spec.datatype:
                raise self.fail(f"{where}.datatype", f"{output['datatype']!r} is not the model's {spec.datatype}")
            shape = self.required(output, "shape", where)
            if (
                not isinstance(shape, list)
                or len(shape) != len(spec.shape)
                or any(isinstance(d, bool) or not isinstance(d, int) or d < 0 for d in shape)
                or any(want not in (-1, got) for got, want in zip(shape, spec.shape, strict=True))
            ):
                raise self.fail(f"{where}.shape", f"{shape!r} does not fit the model's {list(spec.shape)}")
            count = _element_count(self.required(output, "data", where))
            if count != math.prod(shape):
                raise self.fail(f"{where}.data", f"holds {count} elements; shape {shape} needs {math.prod(shape)}")
            self.static_keeps_contract(spec, output["data"], shape, f"{where}.data")

    def config(self, raw_value: Any) -> ModelsConfig:
        raw = self.obj(raw_value, "", frozenset({"$schema", "server", "models"}))
        server_raw = self.obj(self.required(raw, "server", ""), "server", frozenset({"name", "version"}))
        server = ServerInfo(
            self.string(self.required(server_raw, "name", "server"), "server.name"),
            self.string(self.required(server_raw, "version", "server"), "server.version"),
        )
        models_raw = self.required(raw, "models", "")
        if not isinstance(models_raw, list) or not models_raw:
            raise self.fail("models", "must be a non-empty list")
        models = tuple(self.model(value, f"models[{index}]") for index, value in enumerate(models_raw))
        seen: set[str] = set()
        for index, model in enumerate(models):
            if model.name in seen:
                raise self.fail(f"models[{index}].name", f"duplicate model name {model.name!r}")
            seen.add(model.name)
        self.unique_endpoints(models)
        return ModelsConfig(self.source, server, models)

    def unique_endpoints(self, models: tuple[ModelConfig, ...]) -> None:
        """A version's endpoints are its own: its circuit, metrics and stack are that version's. (Models' primary
        routes may share an endpoint, as before versions existed: a test config aliases one model twice.)"""
        owners = {
            endpoint: f"{model.name} version {model.version}"
            for model in models
            for endpoint in (model.route.serverless_endpoint, model.route.async_endpoint)
            if endpoint is not None
        }
        for model_index, model in enumerate(models):
            for version_index, entry in enumerate(model.versions[1:]):
                for key in ("serverless_endpoint", "async_endpoint"):
                    endpoint = getattr(entry.route, key)
                    if endpoint is None:
                        continue
                    if endpoint in owners:
                        raise self.fail(
                            f"models[{model_index}].versions[{version_index}].route.{key}",
                            f"endpoint {endpoint!r} is already {owners[endpoint]}'s",
                        )
                    owners[endpoint] = f"{model.name} version {entry.version}"


def parse_models_config(raw: Any, source: str = "<config>") -> ModelsConfig:
    """Check an already-decoded config document and return the typed config."""
    return _Reader(source).config(raw)


def load_models_config(path: str | Path | None = None) -> ModelsConfig:
    """Read and check the config file (default: ``functions/models.json``)."""
    config_path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    return parse_models_config(read_json_file(config_path), str(config_path))


def parse_model_config(raw: Any, source: str = "<model>") -> ModelConfig:
    """Check one model entry as the model config file holds it."""
    return _Reader(source).model(raw, "model")


def serving_signature(entry: dict[str, Any]) -> dict[str, Any]:
    """What of a model config entry goes into the ``signature.json`` its container reads (``SIGNATURE_FIELDS``).

    Example:
        >>> sorted(serving_signature({"name": "iris", "route": {"sync": "lambda"}, "inputs": [], "version": "1"}))
        ['inputs', 'name', 'version']
    """
    signature = {key: entry[key] for key in SIGNATURE_FIELDS if key in entry}
    if isinstance(signature.get("outputs"), list):
        # An output's contract is the router's check of the answer: the container never reads it.
        signature["outputs"] = [
            {key: value for key, value in output.items() if key != "contract"} if isinstance(output, dict) else output
            for output in signature["outputs"]
        ]
    return signature


def parse_model_signature(raw: Any, source: str = "<signature>") -> ModelConfig:
    """Check a ``signature.json`` (see :func:`serving_signature`); route and limits are the container's own."""
    return _Reader(source).signature(raw, "signature")


def _element_count(data: Any) -> int:
    """Elements in OIP ``data``, flat or nested row-major."""
    if isinstance(data, list):
        return sum(_element_count(item) for item in data)
    return 1
