"""The model and route config as typed, frozen values: what :mod:`functions.config.models` reads
``functions/models.json`` into, and what the router, the serving container and the CDK app work with.

Example:
    >>> TensorSpec("x", "FP32", (-1, 4)).has_free_batch_dim
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

SyncTarget = Literal["serverless", "lambda"]
SYNC_TARGETS: Final[tuple[str, ...]] = ("serverless", "lambda")
# Dynamic batching in the serving container (serving/batching.py). The defaults are short on
# purpose: under load the queue fills while the previous batch runs, so the delay only matters when
# traffic is light, where it is pure added latency (bench/batching.py has the measurements).
DEFAULT_MAX_BATCH_SIZE: Final[int] = 32
DEFAULT_MAX_QUEUE_DELAY_MS: Final[float] = 1.0
# The one channel that carries the batching block to the container: environment variables on its CfnModel
# (infra/constructs/model_endpoint.py), read back by BatchingSettings.from_environ. Not signature.json.
BATCHING_ENV: Final[str] = "SERVING_BATCHING"
MAX_BATCH_SIZE_ENV: Final[str] = "SERVING_MAX_BATCH_SIZE"
MAX_QUEUE_DELAY_MS_ENV: Final[str] = "SERVING_MAX_QUEUE_DELAY_MS"


@dataclass(frozen=True)
class ValueRange:
    minimum: float | None
    maximum: float | None


@dataclass(frozen=True)
class OutputContract:
    """What an output's values must satisfy before an answer reaches the caller (``contract`` of an output in
    models.json): each element within ``value_range``, finite when ``finite``, and, for a probability vector,
    the elements along ``sum_to_one_axis`` summing to 1 within ``sum_to_one_tolerance`` (None: not checked)."""

    value_range: ValueRange | None = None
    finite: bool = False
    sum_to_one_tolerance: float | None = None
    sum_to_one_axis: int = -1


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    value_range: ValueRange | None = None
    allow_non_finite: bool = False
    contract: OutputContract | None = None  # outputs only; None: the answer passes through unparsed

    @property
    def has_free_batch_dim(self) -> bool:
        return bool(self.shape) and self.shape[0] == -1


@dataclass(frozen=True)
class RouteConfig:
    sync: SyncTarget | None
    serverless_endpoint: str | None
    async_endpoint: str | None

    @property
    def allows_async(self) -> bool:
        return self.async_endpoint is not None


@dataclass(frozen=True)
class LimitsConfig:
    max_body_bytes: int
    max_batch_rows: int


@dataclass(frozen=True)
class ResilienceConfig:
    """How the sync path behaves when the endpoint does not answer (all optional in the config file)."""

    max_attempts: int = 3
    base_delay_ms: int = 50
    max_delay_ms: int = 1000
    breaker_failure_threshold: int = 5
    breaker_failure_rate: float = 0.5
    breaker_window_s: int = 30
    breaker_min_calls: int = 10
    breaker_cooldown_s: int = 10
    fallback: str | None = None  # None, "last_good" or "static"
    static_response: dict[str, Any] | None = None  # the OIP response a "static" fallback answers
    spill_async: bool = False  # answer 202 with a job instead of failing (needs an async route)


@dataclass(frozen=True)
class BatchingConfig:
    """Dynamic batching of the model's serving container (optional ``batching`` block of a model).

    ``enabled`` defaults to on when every input and output has a free batch dim (-1 first) and the block is
    absent; a block that is present means batching is wanted (``enabled`` defaults to true in it), so a
    model that cannot be stacked is rejected rather than silently served unbatched.

    Example:
        >>> BatchingConfig(enabled=True, max_batch_size=64).environment()["SERVING_MAX_BATCH_SIZE"]
        '64'
    """

    enabled: bool
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_queue_delay_ms: float = DEFAULT_MAX_QUEUE_DELAY_MS

    def environment(self) -> dict[str, str]:
        """The container environment that carries this block (what ``BatchingSettings.from_environ`` reads)."""
        return {
            BATCHING_ENV: "on" if self.enabled else "off",
            MAX_BATCH_SIZE_ENV: str(self.max_batch_size),
            MAX_QUEUE_DELAY_MS_ENV: f"{self.max_queue_delay_ms:g}",
        }


# The tolerance of a floating-point output when a shadow's block names none: float32 round-off, no more.
DEFAULT_SHADOW_TOLERANCE: Final[float] = 1e-6


@dataclass(frozen=True)
class ShadowConfig:
    """A shadow version gets a copy of ``sample_rate`` of the requests; its answer is only compared.

    ``tolerance`` maps a floating-point output's name to the absolute difference still counted as agreement
    (default :data:`DEFAULT_SHADOW_TOLERANCE`); integer, bool and bytes outputs compare exactly.
    """

    sample_rate: float
    tolerance: Mapping[str, float] = field(default_factory=dict)

    def tolerance_of(self, output: str) -> float:
        return self.tolerance.get(output, DEFAULT_SHADOW_TOLERANCE)


# Rows of one batch a capture line keeps by default: 100 rows of a 64-wide input are ~40 KB of JSON.
DEFAULT_CAPTURE_MAX_ROWS = 100


@dataclass(frozen=True)
class CaptureConfig:
    """Which share of a model's answered requests the router captures for drift monitoring, and what of them:
    only the allow-listed ``inputs`` (requests may carry personal data) and the outputs when ``outputs``, of at
    most ``max_rows`` rows of a batch (evenly spaced: drift needs a sample of rows, not every row)."""

    sample_rate: float
    inputs: tuple[str, ...]
    outputs: bool
    max_rows: int = DEFAULT_CAPTURE_MAX_ROWS


@dataclass(frozen=True)
class VersionConfig:
    """One version of a model: its own route (endpoints unique across the config) and artifact, its share of
    the traffic in percent (0 for a shadow), and the shadow block when it only receives copies."""

    version: str
    route: RouteConfig
    artifact: str | None
    weight: int
    shadow: ShadowConfig | None = None


@dataclass(frozen=True)
class ModelConfig:
    name: str
    version: str
    platform: str
    artifact: str | None
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    route: RouteConfig
    limits: LimitsConfig
    resilience: ResilienceConfig = field(default_factory=ResilienceConfig)
    batching: BatchingConfig = field(default_factory=lambda: BatchingConfig(enabled=False))
    # The versions besides the primary (``version``, ``route``, ``artifact``) and the primary's traffic share.
    other_versions: tuple[VersionConfig, ...] = ()
    primary_weight: int = 100
    capture: CaptureConfig | None = None  # None: no capture (opt-in)
    # Every version, the primary first: derived, so ``dataclasses.replace(model, route=...)`` stays coherent.
    versions: tuple[VersionConfig, ...] = field(init=False, repr=False, compare=False)
    version_by_name: dict[str, VersionConfig] = field(init=False, repr=False, compare=False)
    input_by_name: dict[str, TensorSpec] = field(init=False, repr=False, compare=False)
    output_names: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        primary = VersionConfig(self.version, self.route, self.artifact, weight=self.primary_weight)
        object.__setattr__(self, "versions", (primary, *self.other_versions))
        object.__setattr__(self, "version_by_name", {entry.version: entry for entry in self.versions})
        object.__setattr__(self, "input_by_name", {spec.name: spec for spec in self.inputs})
        object.__setattr__(self, "output_names", frozenset(spec.name for spec in self.outputs))

    @property
    def has_free_batch_dim(self) -> bool:
        """Whether requests can be stacked along dim 0, as far as the declared signature says."""
        return all(spec.has_free_batch_dim for spec in (*self.inputs, *self.outputs))

    @property
    def shadows(self) -> tuple[VersionConfig, ...]:
        return tuple(entry for entry in self.versions if entry.shadow is not None)

    def for_version(self, entry: VersionConfig) -> ModelConfig:
        """This model as ``entry`` serves it: the version's name, route and artifact, the model's contract (what
        its endpoint's container, its in-Lambda session and its answers' ``model_version`` are built from)."""
        if entry.version == self.version:
            return self
        return replace(
            self,
            version=entry.version,
            route=entry.route,
            artifact=entry.artifact,
            other_versions=(),
            primary_weight=100,
        )


@dataclass(frozen=True)
class ServerInfo:
    name: str
    version: str


@dataclass(frozen=True)
class ModelsConfig:
    source: str
    server: ServerInfo
    models: tuple[ModelConfig, ...]
    by_name: dict[str, ModelConfig] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {model.name: model for model in self.models})

    def model(self, name: str) -> ModelConfig | None:
        return self.by_name.get(name)

    def in_lambda_models(self) -> list[ModelConfig]:
        """Every version that runs inside the router (route ``lambda``), as that version serves it: what the
        router loads and what the templates put in its model layer."""
        return [
            model.for_version(entry)
            for model in self.models
            for entry in model.versions
            if entry.route.sync == "lambda"
        ]
