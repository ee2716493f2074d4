"""The smoke requests of a model config: what a new router version must answer 2xx before it takes traffic.

Per model: its metadata, and per version a valid infer request pinned to that version
(``/v2/models/{m}/versions/{v}/infer``), built from the declared inputs: every free dimension 1, every value
inside the declared range (its middle, or its one bound), so the router's own validation accepts it and the
request reaches the version's route. A wrong endpoint name or a broken route then answers 5xx before any
caller sees it. A model without a sync route gets the metadata request only: an infer would start an async job.

Example:
    >>> [(r.method, r.path) for r in smoke_requests(config)][:2]
    [('GET', '/v2/models/iris'), ('POST', '/v2/models/iris/versions/1/infer')]
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from functions.config.api_routes import MODEL_METADATA, MODEL_VERSION_INFER
from functions.config.datatypes import FLOAT_TYPES, INTEGER_BOUNDS
from functions.config.model_types import ModelConfig, ModelsConfig, TensorSpec
from functions.domain.model_versions import model_versions


@dataclass(frozen=True)
class SmokeRequest:
    """One request as the API would route it: method, resource template, concrete path, its parameters."""

    method: str
    resource: str
    path: str
    path_parameters: dict[str, str]
    body: bytes


def smoke_requests(config: ModelsConfig) -> tuple[SmokeRequest, ...]:
    requests: list[SmokeRequest] = []
    for model in config.models:
        requests.append(
            SmokeRequest("GET", MODEL_METADATA.resource, f"/v2/models/{model.name}", {"model": model.name}, b"")
        )
        if model.route.sync is None:
            continue
        body = infer_body(model)
        for version in model_versions(model):
            requests.append(
                SmokeRequest(
                    "POST",
                    MODEL_VERSION_INFER.resource,
                    f"/v2/models/{model.name}/versions/{version}/infer",
                    {"model": model.name, "version": version},
                    body,
                )
            )
    return tuple(requests)


def infer_body(model: ModelConfig) -> bytes:
    """One row of each declared input, every value valid."""
    inputs = []
    for spec in model.inputs:
        shape = [1 if dim == -1 else dim for dim in spec.shape]
        inputs.append(
            {
                "name": spec.name,
                "shape": shape,
                "datatype": spec.datatype,
                "data": [valid_value(spec)] * math.prod(shape),
            }
        )
    return json.dumps({"id": "deploy-smoke", "inputs": inputs}, separators=(",", ":")).encode()


def valid_value(spec: TensorSpec) -> Any:
    """A value of the input's datatype inside its declared range."""
    if spec.datatype == "BOOL":
        return False
    if spec.datatype == "BYTES":
        return "smoke"
    declared = spec.value_range
    low = declared.minimum if declared is not None else None
    high = declared.maximum if declared is not None else None
    if spec.datatype in FLOAT_TYPES:
        if low is not None and high is not None:
            return (low + high) / 2
        return float(low if low is not None else high if high is not None else 0.0)
    type_low, type_high = INTEGER_BOUNDS[spec.datatype]
    low_int = type_low if low is None else max(type_low, math.ceil(low))
    high_int = type_high if high is None else min(type_high, math.floor(high))
    if low is not None and high is not None:
        return (low_int + high_int) // 2
    return low_int if low is not None else high_int if high is not None else max(type_low, 0)
