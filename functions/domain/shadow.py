"""Shadow versions: which requests a shadow gets a copy of, the log line that carries the copy from the router
to the shadow worker, and whether the shadow's answer agrees with the primary's.

The router only samples and writes a line (``functions/handlers/router/shadow_shipping.py``); the worker
(``functions/handlers/shadow/``) calls the shadow's endpoint with the request and compares the two answers
output by output: exactly for integer, bool and bytes outputs, within the version's absolute tolerance for
floating-point ones, and the shapes must match.

Example:
    >>> sampled(ShadowKey(sticky_key="order-17", body=b"{}"), "iris", "3", 0.25)
    False
    >>> compare_answers(b'{"outputs": [...]}', b'{"outputs": [...]}', iris.outputs, ShadowConfig(1.0)).agreed
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, Protocol

from functions.config.datatypes import FLOAT_TYPES
from functions.config.model_types import ModelConfig, ModelsConfig, ShadowConfig, TensorSpec, VersionConfig
from functions.config.telemetry import SHADOW_LINE_KEY
from functions.domain.echo import clip
from functions.domain.output_contract import OutputContractError, check_answer

# CloudWatch Logs takes a log event of at most 256 KB (PutLogEvents, "Each log event can be no larger than
# 256 KB"; the API reference now says 1 MB, the SDK references still 256 KB: the smaller holds either way).
LOG_EVENT_MAX_BYTES: Final[int] = 256 * 1024
# A shadow line larger than this is not written: the margin leaves room for the newline and what the log
# pipeline adds around a message, so a line is never split or truncated on its way to the worker.
SHADOW_LINE_MAX_BYTES: Final[int] = LOG_EVENT_MAX_BYTES - 2048
SAMPLE_BUCKETS: Final[int] = 10_000
_SALT: Final[bytes] = b"shadow\x00"


@dataclass(frozen=True)
class ShadowKey:
    """What makes two requests the same request for sampling: the caller's sticky key (``Idempotency-Key``,
    else ``X-Routing-Key``) when it sent one, else the body."""

    sticky_key: str | None
    body: bytes
    caller: str | None = None

    def digest(self, model: str, version: str) -> bytes:
        key = self.sticky_key.encode() if self.sticky_key is not None else hashlib.sha256(self.body).digest()
        parts = (_SALT, model.encode(), b"\x00", version.encode(), b"\x00", (self.caller or "").encode(), b"\x00")
        return hashlib.sha256(b"".join(parts) + key).digest()


def sampled(key: ShadowKey, model: str, version: str, sample_rate: float) -> bool:
    """Whether the shadow ``version`` of ``model`` gets a copy of this request: a stable hash of the request's
    key into [0, 10000) below ``sample_rate`` of it. Stable, not random, so a retry of a request (same sticky
    key, or the same body) is shadowed exactly when the first try was: the shadow never sees one request twice
    as often as another. Salted apart from the version pick, so the sample is independent of the weights."""
    bucket = int.from_bytes(key.digest(model, version)[:8], "big") % SAMPLE_BUCKETS
    return bucket < round(sample_rate * SAMPLE_BUCKETS)


def shadow_of(model: ModelConfig) -> VersionConfig | None:
    """The model's shadow version (the config allows one per model to be sampled here: the first)."""
    shadows = model.shadows
    return shadows[0] if shadows else None


@dataclass(frozen=True)
class ShadowRequest:
    """One sampled request, as the router's log line carries it to the worker."""

    model: str
    version: str  # the shadow's
    primary_version: str
    correlation_id: str | None
    request: str  # the JSON body the router validated and sent to the primary
    primary_answer: str  # the primary's OIP JSON answer
    primary_latency_ms: float

    def line(self) -> str:
        return json.dumps({SHADOW_LINE_KEY: asdict(self)}, separators=(",", ":"))

    @classmethod
    def from_line(cls, line: str) -> ShadowRequest:
        """The request a line carries; a ValueError naming what is wrong for anything else."""
        document = json.loads(line)
        fields = document.get(SHADOW_LINE_KEY) if isinstance(document, dict) else None
        if not isinstance(fields, dict):
            raise ValueError(f"not a shadow line: no {SHADOW_LINE_KEY!r} object")
        strings = ("model", "version", "primary_version", "request", "primary_answer")
        for name in strings:
            if not isinstance(fields.get(name), str):
                raise ValueError(f"shadow line field {name!r} must be a string")
        correlation_id = fields.get("correlation_id")
        latency = fields.get("primary_latency_ms")
        if correlation_id is not None and not isinstance(correlation_id, str):
            raise ValueError("shadow line field 'correlation_id' must be a string or null")
        if isinstance(latency, bool) or not isinstance(latency, int | float):
            raise ValueError("shadow line field 'primary_latency_ms' must be a number")
        return cls(
            model=fields["model"],
            version=fields["version"],
            primary_version=fields["primary_version"],
            correlation_id=correlation_id,
            request=fields["request"],
            primary_answer=fields["primary_answer"],
            primary_latency_ms=float(latency),
        )


@dataclass(frozen=True)
class Agreement:
    """Whether every output agreed; ``disagreements`` names each output that did not, and why."""

    disagreements: tuple[str, ...]

    @property
    def agreed(self) -> bool:
        return not self.disagreements


def compare_answers(
    primary: str | bytes, shadow: str | bytes, outputs: Sequence[TensorSpec], config: ShadowConfig
) -> Agreement:
    """Compare two OIP JSON answers output by output (the model's declared outputs; one missing on either side
    disagrees). A shadow answer that is not an OIP response raises ValueError: an error, not a disagreement."""
    primary_outputs = _outputs(primary, "primary")
    shadow_outputs = _outputs(shadow, "shadow")
    problems = []
    for spec in outputs:
        left, right = primary_outputs.get(spec.name), shadow_outputs.get(spec.name)
        if left is None or right is None:
            if left is not right:
                problems.append(f"{spec.name}: only the {'primary' if right is None else 'shadow'} answered it")
            continue
        problem = _compare_output(spec, left, right, config.tolerance_of(spec.name))
        if problem is not None:
            problems.append(f"{spec.name}: {problem}")
    return Agreement(tuple(problems))


def _outputs(answer: str | bytes, which: str) -> dict[str, Mapping[str, Any]]:
    try:
        document = json.loads(answer)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the {which} answer is not JSON: {clip(str(error))}") from None
    outputs = document.get("outputs") if isinstance(document, dict) else None
    if not isinstance(outputs, list) or not all(
        isinstance(o, dict) and isinstance(o.get("name"), str) for o in outputs
    ):
        raise ValueError(f"the {which} answer is not an OIP response: no list of named outputs")
    return {output["name"]: output for output in outputs}


def _compare_output(
    spec: TensorSpec, left: Mapping[str, Any], right: Mapping[str, Any], tolerance: float
) -> str | None:
    if left.get("shape") != right.get("shape"):
        return f"shape {left.get('shape')} != {right.get('shape')}"
    left_data, right_data = list(_flat(left.get("data"))), list(_flat(right.get("data")))
    if len(left_data) != len(right_data):
        return f"{len(left_data)} values != {len(right_data)}"
    floating = spec.datatype in FLOAT_TYPES
    for index, (a, b) in enumerate(zip(left_data, right_data, strict=True)):
        if not (_close(a, b, tolerance) if floating else a == b and type(a) is type(b)):
            return f"value {index}: {clip(a, 40)} vs {clip(b, 40)}"
    return None


def _close(a: Any, b: Any, tolerance: float) -> bool:
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (a, b)):
        return bool(a == b)  # the non-finite values a JSON answer may spell as strings ("NaN", "Infinity")
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return bool(a == b or abs(a - b) <= tolerance)


def _flat(data: Any) -> Iterator[Any]:
    if isinstance(data, list):
        for item in data:
            yield from _flat(item)
    else:
        yield data


class ShadowEndpoint(Protocol):
    """The shadow's serverless endpoint (``functions.adapters.sagemaker.SageMakerBackend`` in the worker)."""

    def invoke(
        self, endpoint: str, body: bytes, *, attempt_ms: Callable[[], int], correlation_id: str | None = None
    ) -> bytes: ...


@dataclass(frozen=True)
class ShadowResult:
    """What one shadowed request came to: ``agreed`` None when the shadow failed (``error`` says how)."""

    model: str
    version: str
    latency_ms: float | None
    agreed: bool | None
    error: str | None = None
    disagreements: tuple[str, ...] = ()


@dataclass(frozen=True)
class ShadowRunner:
    """Replays a shadow line against the shadow's endpoint and compares the answers. Never raises: a failure
    of any kind, an answer that breaks the model's output contract included, is a result with ``error`` set
    (counted, never paged)."""

    config: ModelsConfig
    endpoint_name_prefix: str
    endpoint: ShadowEndpoint
    timeout_ms: int
    clock: Callable[[], float] = time.perf_counter

    def run(self, request: ShadowRequest) -> ShadowResult:
        model = self.config.model(request.model)
        version = model.version_by_name.get(request.version) if model is not None else None
        if model is None or version is None or version.shadow is None:
            return ShadowResult(request.model, request.version, None, None, "not a shadow version in the config")
        route = version.route
        if route.sync != "serverless" or route.serverless_endpoint is None:
            return ShadowResult(model.name, version.version, None, None, "a shadow needs a serverless route")
        endpoint = self.endpoint_name_prefix + route.serverless_endpoint
        started = self.clock()
        try:
            answer = self.endpoint.invoke(
                endpoint,
                request.request.encode(),
                attempt_ms=lambda: self.timeout_ms,
                correlation_id=request.correlation_id,
            )
            latency_ms = (self.clock() - started) * 1000
            check_answer(model, answer)
            agreement = compare_answers(request.primary_answer, answer, model.outputs, version.shadow)
        except OutputContractError as error:  # it answered, outside the contract: an error, its message whole
            return ShadowResult(model.name, version.version, latency_ms, None, f"{type(error).__name__}: {error}")
        except Exception as error:  # the endpoint's domain errors, an answer that is not OIP: all counted alike
            return ShadowResult(model.name, version.version, None, None, f"{type(error).__name__}: {clip(str(error))}")
        return ShadowResult(model.name, version.version, latency_ms, agreement.agreed, None, agreement.disagreements)


def shadow_metrics_document(
    service: str, model: str, version: str, values: Mapping[str, float], *, timestamp_ms: int, namespace: str
) -> dict[str, Any]:
    """One CloudWatch embedded-metric-format document of ``values`` (metric name -> value; ``*Latency`` in
    milliseconds, the rest counts) on the dimension set (service, model, version)."""
    metrics = [{"Name": name, "Unit": "Milliseconds" if name.endswith("Latency") else "Count"} for name in values]
    directive = {"Namespace": namespace, "Dimensions": [["service", "model", "version"]], "Metrics": metrics}
    return {
        "_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [directive]},
        "service": service,
        "model": model,
        "version": version,
        **values,
    }
