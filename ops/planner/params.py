"""The simulation's parameters: AWS documented limits, and assumptions where AWS publishes no figure.

=================================  =========  ===============================================================
field                              default    where it comes from
=================================  =========  ===============================================================
reference_memory_mb                2048       the trace format: ``latency_ms`` is measured at 2048 MB
memory_speed_exponent              0.5        assumption: latency(M) = latency_ref x (ref / M) ** 0.5; CPU
                                              grows with memory (Lambda: 1 vCPU at 1769 MB) but a model
                                              only partly uses the extra cores, so halving memory costs
                                              ~41% more time, not 100%
router_overhead_ms                 15         assumption: validation, signing and logging in the router
                                              (bench.router_overhead measures the local figure)
router_cold_start_ms               800        assumption: Python init of the router (imports, clients)
lambda_keep_warm_s                 600        assumption: AWS documents no idle lifetime for Lambda
                                              environments; 5-15 min is commonly observed
serverless_invoke_overhead_ms      25         assumption: the HTTPS hop router -> SageMaker runtime
serverless_cold_start_base_ms      4000       assumption: AWS says serverless cold starts take "seconds"
                                              (container start + runtime init)
cold_start_per_model_mb_ms         20         assumption: loading 1 MB of model weights (both tiers)
serverless_keep_warm_s             600        assumption: the idle lifetime of a serverless container
in_lambda_max_model_mb             200        AWS: 250 MB unzipped for a function and its layers, less
                                              ~50 MB for the router, onnxruntime is in the layer budget
default_model_size_mb              50         assumption for a model ``model_size_mb`` does not name
async_instance_start_s             420        assumption: an async endpoint scaling out from zero takes
                                              minutes (instance launch + image pull + model load)
async_scale_in_idle_s              900        assumption: the scale-in alarm's 15 one-minute datapoints
async_overhead_ms                  1000       assumption: S3 input/output, queueing and the notification
gpu_speedup                        5.0        assumption: compute time on a GPU instance vs the trace's
target_tracking_scale_out_lag_s    180        AWS: target tracking's scale-out alarm needs 3 datapoints
                                              of 1 minute
target_tracking_scale_in_lag_s     900        AWS: its scale-in alarm needs 15 datapoints of 1 minute
serverless_memory_sizes_mb         1024..6144 AWS: serverless endpoint memory is 1024-6144 MB, step 1024
serverless_max_concurrency         200        AWS: an endpoint's MaxConcurrency is 1-200
max_provisioned_options            12         pruning: provisioned concurrency 0..peak on at most this many
                                              levels (every level to 8, then doubling)
=================================  =========  ===============================================================

``python -m ops plan --params FILE`` overrides any field from a JSON object of the same names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


class ParamsError(ValueError):
    """A ``--params`` file that is not a JSON object of known fields with numbers of the right kind."""


@dataclass(frozen=True, slots=True)
class SimulationParams:
    reference_memory_mb: int = 2048
    memory_speed_exponent: float = 0.5
    router_overhead_ms: float = 15.0
    router_cold_start_ms: float = 800.0
    lambda_keep_warm_s: float = 600.0
    serverless_invoke_overhead_ms: float = 25.0
    serverless_cold_start_base_ms: float = 4000.0
    cold_start_per_model_mb_ms: float = 20.0
    serverless_keep_warm_s: float = 600.0
    in_lambda_max_model_mb: float = 200.0
    default_model_size_mb: float = 50.0
    model_size_mb: dict[str, float] = field(default_factory=dict)
    async_instance_start_s: float = 420.0
    async_scale_in_idle_s: float = 900.0
    async_overhead_ms: float = 1000.0
    gpu_speedup: float = 5.0
    target_tracking_scale_out_lag_s: float = 180.0
    target_tracking_scale_in_lag_s: float = 900.0
    serverless_memory_sizes_mb: tuple[int, ...] = (1024, 2048, 3072, 4096, 5120, 6144)
    serverless_max_concurrency: int = 200
    max_provisioned_options: int = 12

    def model_mb(self, model: str) -> float:
        return self.model_size_mb.get(model, self.default_model_size_mb)

    def speed_factor(self, memory_mb: float) -> float:
        """How much longer than at the reference memory a request takes at ``memory_mb``."""
        return float((self.reference_memory_mb / memory_mb) ** self.memory_speed_exponent)


def _value(name: str, default: Any, value: Any) -> Any:
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(
            isinstance(size, (int, float)) and not isinstance(size, bool) and size >= 0 for size in value.values()
        ):
            raise ParamsError(f"{name} must be an object of model name -> megabytes")
        return {str(key): float(size) for key, size in value.items()}
    if isinstance(default, tuple):
        if not isinstance(value, list) or not value or not all(type(item) is int and item > 0 for item in value):
            raise ParamsError(f"{name} must be a non-empty list of positive integers")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ParamsError(f"{name} must be a number at least 0, not {value!r}")
    if isinstance(default, int):
        if value != int(value):
            raise ParamsError(f"{name} must be a whole number, not {value!r}")
        return int(value)
    return float(value)


def load_params(path: str | Path | None) -> SimulationParams:
    """The defaults, with the fields a JSON file names replaced."""
    defaults = SimulationParams()
    if path is None:
        return defaults
    try:
        raw = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ParamsError(f"{path}: {error}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must be a JSON object of parameter names")
    known = {item.name: getattr(defaults, item.name) for item in fields(defaults)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ParamsError(f"{path}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    try:
        return replace(defaults, **{name: _value(name, known[name], value) for name, value in raw.items()})
    except ParamsError as error:
        raise ParamsError(f"{path}: {error}") from None
