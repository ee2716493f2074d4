"""The public API's resources: one list read by the router, the local API and the CDK API construct."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True)
class ApiRoute:
    method: str
    resource: str  # API Gateway resource template, e.g. /v2/models/{model}/infer

    @property
    def resolver_path(self) -> str:
        """The same path in Powertools' route syntax (``<model>``)."""
        return re.sub(r"\{(\w+)\}", r"<\1>", self.resource)


SERVER_METADATA = ApiRoute("GET", "/v2")
HEALTH_LIVE = ApiRoute("GET", "/v2/health/live")
HEALTH_READY = ApiRoute("GET", "/v2/health/ready")
MODEL_METADATA = ApiRoute("GET", "/v2/models/{model}")
MODEL_READY = ApiRoute("GET", "/v2/models/{model}/ready")
MODEL_INFER = ApiRoute("POST", "/v2/models/{model}/infer")
# The same three, pinned to one version of the model (the OIP REST spec's optional ``versions/{version}`` segment).
MODEL_VERSION_METADATA = ApiRoute("GET", "/v2/models/{model}/versions/{version}")
MODEL_VERSION_READY = ApiRoute("GET", "/v2/models/{model}/versions/{version}/ready")
MODEL_VERSION_INFER = ApiRoute("POST", "/v2/models/{model}/versions/{version}/infer")
JOB_STATUS = ApiRoute("GET", "/v2/jobs/{job_id}")

ROUTES: Final[tuple[ApiRoute, ...]] = (
    SERVER_METADATA,
    HEALTH_LIVE,
    HEALTH_READY,
    MODEL_METADATA,
    MODEL_READY,
    MODEL_INFER,
    MODEL_VERSION_METADATA,
    MODEL_VERSION_READY,
    MODEL_VERSION_INFER,
    JOB_STATUS,
)
# The routes whose body is an infer request: API Gateway validates it against INFER_REQUEST_SCHEMA.
INFER_ROUTES: Final[tuple[ApiRoute, ...]] = (MODEL_INFER, MODEL_VERSION_INFER)
# The envelope of an Open Inference Protocol infer request (docs/architecture.md, 'Public API'). Deliberately
# structural: the router checks names, datatypes, shapes and ranges against the model and names the input at
# fault, which a gateway validation message cannot. Everything rejected here is rejected by the router too.
# One source of truth: the API Gateway request model (infra/constructs/api.py) and the OpenAPI document
# (local/openapi.py, docs/openapi.json) both read it.
# Closed, as the router is (functions/domain/validation.py): the spec's extension point is ``parameters``, and a
# misspelled field ("output") silently ignored would answer something the caller did not ask for. ``model_name``
# and ``model_version`` are the kserve SDK's (``InferRequest.to_rest()`` always sends ``model_name``); the router
# refuses them when they contradict the path.
INFER_REQUEST_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["inputs"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string"},
        "model_name": {"type": "string"},
        "model_version": {"type": "string"},
        "parameters": {"type": "object"},
        "inputs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "shape", "datatype", "data"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                    "datatype": {"type": "string", "minLength": 1},
                    "data": {"type": "array"},
                    "parameters": {"type": "object"},
                },
            },
        },
        "outputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {"name": {"type": "string", "minLength": 1}, "parameters": {"type": "object"}},
            },
        },
    },
}
