"""The API's OpenAPI document, ``docs/openapi.json``: ``python -m local.openapi`` rewrites it, ``--check`` fails
when the committed file is stale.

Paths, operations and path parameters come from the router's own Powertools resolver
(``functions.handlers.router.handler.app``), so a route added there shows up here. Its handlers take raw bodies (the
router validates them against the model and names the input at fault), so the resolver knows no schemas:
this module adds the Open Inference Protocol's request and response schemas, the ``Prefer`` and
``Idempotency-Key`` headers, and every status the router really answers per operation (the table in
``functions/handlers/router/responses.py``; never 500, which would be a bug).

Powertools' OpenAPI generation needs pydantic, which the router's cold path never imports: the document is
generated offline, here, and committed.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from functions.config import api_routes as api
from functions.config.model_types import ModelConfig
from functions.domain.job_records import JOB_ID_PATTERN

DOCUMENT_PATH: Final[Path] = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
TITLE: Final[str] = "inference-router: Open Inference Protocol (KServe v2 REST)"
JSON: Final[str] = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


TENSOR: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "datatype", "shape", "data"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": 0}},
        "data": {"type": "array", "description": "row-major, flat or nested"},
        "parameters": {"type": "object"},
    },
}
TENSOR_METADATA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["name", "datatype", "shape"],
    "properties": {
        "name": {"type": "string"},
        "datatype": {"type": "string"},
        "shape": {"type": "array", "items": {"type": "integer", "minimum": -1}, "description": "-1: a free dim"},
    },
}
SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "InferRequest": api.INFER_REQUEST_SCHEMA,
    "InferResponse": {
        "type": "object",
        "required": ["model_name", "outputs"],
        "properties": {
            "model_name": {"type": "string"},
            "model_version": {"type": "string"},
            "id": {"type": "string"},
            "parameters": {"type": "object"},
            "outputs": {"type": "array", "items": _ref("Tensor")},
        },
    },
    "Tensor": TENSOR,
    "TensorMetadata": TENSOR_METADATA,
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {"error": {"type": "string", "description": "names the input and the rule it broke"}},
    },
    "ServerMetadata": {
        "type": "object",
        "required": ["name", "version", "extensions"],
        "properties": {
            "name": {"type": "string"},
            "version": {"type": "string"},
            "extensions": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Live": {"type": "object", "required": ["live"], "properties": {"live": {"type": "boolean"}}},
    "Ready": {"type": "object", "required": ["ready"], "properties": {"ready": {"type": "boolean"}}},
    "ModelReady": {
        "type": "object",
        "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}},
    },
    "ModelMetadata": {
        "type": "object",
        "required": ["name", "versions", "platform", "inputs", "outputs"],
        "properties": {
            "name": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "string"}},
            "platform": {"type": "string"},
            "inputs": {"type": "array", "items": _ref("TensorMetadata")},
            "outputs": {"type": "array", "items": _ref("TensorMetadata")},
        },
    },
    "JobAccepted": {
        "type": "object",
        "required": ["id", "status"],
        "properties": {"id": {"type": "string"}, "status": {"type": "string", "enum": ["queued"]}},
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "model"],
        "properties": {
            "id": {"type": "string"},
            # No "running": a SageMaker async endpoint does not say when it starts a job.
            "status": {"type": "string", "enum": ["queued", "succeeded", "failed"]},
            "model": {"type": "string"},
            "result": {
                "description": "the OIP infer response, inline up to JOB_RESULT_INLINE_MAX_BYTES "
                "(the endpoint's raw text if it did not answer JSON)"
            },
            "result_url": {"type": "string", "description": "a presigned S3 URL, for a larger result"},
            "error": {"type": "string", "description": "why a failed job failed"},
        },
    },
}

RETRY_AFTER: Final[dict[str, Any]] = {
    "description": "seconds to wait before retrying",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
DEGRADED: Final[dict[str, Any]] = {
    "description": "set on a degraded answer: '<reason>; static-fallback | last-good | spilled-async'",
    "required": False,
    "schema": {"type": "string"},
}
ERRORS: Final[dict[int, str]] = {
    400: "malformed JSON; unknown, missing or repeated input; wrong datatype; shape vs. element count; value "
    "outside the declared range; NaN/Inf; too many batch rows; model_name or model_version contradicting the path; "
    "the model failed with a 400",
    404: "unknown model, model version, job or path",
    409: "the same Idempotency-Key is still being submitted",
    410: "the job succeeded, but its result has expired from the async bucket (results are kept a set number of days)",
    413: "body over the model's max_body_bytes and no async route (or over the Lambda's 6 MB)",
    422: "Idempotency-Key reused with another body; the model failed with another 4xx",
    502: "the model failed with a 5xx, or the endpoint is missing or refused the request",
    503: "endpoint throttled, warming up, failing transiently, unreachable, or its circuit is open; or a store of "
    "the async path (S3, DynamoDB) throttled or unreachable",
    504: "the endpoint did not answer within the deadline",
}
HEADERS_BY_STATUS: Final[dict[int, dict[str, Any]]] = {
    409: {"Retry-After": RETRY_AFTER},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}
# What API Gateway itself answers in front of every operation, in the same {"error"} shape (its gateway
# responses, infra/constructs/api.py); the router never sees these requests.
GATEWAY_RESPONSES: Final[dict[int, tuple[str, str]]] = {
    403: ("API Gateway: not authenticated (no or an invalid SigV4 signature, or API key) or not authorized", "Error"),
    429: ("API Gateway: over the stage's throttle or the API key's usage-plan quota; wait Retry-After", "Error"),
}
# Per operation: (summary, {status: (description, schema name)}); error statuses point at ERRORS.
OPERATIONS: Final[dict[api.ApiRoute, tuple[str, dict[int, tuple[str, str]]]]] = {
    api.SERVER_METADATA: ("Server metadata", {200: ("the server's name and version", "ServerMetadata")}),
    api.HEALTH_LIVE: ("Liveness", {200: ("the server is live", "Live")}),
    api.HEALTH_READY: (
        "Readiness: every model is ready",
        {200: ("the server is ready", "Ready"), 400: ("a model is not ready (the body says ready: false)", "Ready")},
    ),
    api.MODEL_METADATA: (
        "Model metadata: inputs and outputs with datatype and shape",
        {200: ("the model's metadata", "ModelMetadata"), 404: (ERRORS[404], "Error")},
    ),
    api.MODEL_READY: (
        "Model readiness",
        {
            200: ("the model is ready", "ModelReady"),
            400: ("the model is not ready: its endpoint is not in service or its circuit is open", "ModelReady"),
            404: (ERRORS[404], "Error"),
        },
    ),
    api.MODEL_INFER: (
        "Inference; with 'Prefer: respond-async' (or an async-only model, or a body too large for the sync "
        "path) an async job",
        {
            200: ("the model's answer (or a degraded one, marked X-Inference-Degraded)", "InferResponse"),
            202: ("an async job was accepted: poll its Location", "JobAccepted"),
            **{status: (ERRORS[status], "Error") for status in (400, 404, 409, 413, 422, 502, 503, 504)},
        },
    ),
    api.JOB_STATUS: (
        "An async job's status, with its result inline, as a presigned URL, or its error",
        {
            200: ("the job", "Job"),
            400: ("the id is not a job id (32 lowercase hex characters)", "Error"),
            404: ("unknown job", "Error"),
            410: (ERRORS[410], "Error"),
            503: ("the job table or the async bucket is throttled or unreachable", "Error"),
        },
    ),
}
# A route pinned to one version answers as its unversioned route, its 404 also for an unknown version.
VERSIONED: Final[dict[api.ApiRoute, tuple[str, api.ApiRoute]]] = {
    api.MODEL_VERSION_METADATA: ("One version's metadata", api.MODEL_METADATA),
    api.MODEL_VERSION_READY: ("One version's readiness", api.MODEL_READY),
    api.MODEL_VERSION_INFER: ("Inference by one version of the model", api.MODEL_INFER),
}
INFER_HEADERS: Final[list[dict[str, Any]]] = [
    {
        "name": "Prefer",
        "in": "header",
        "required": False,
        "description": "RFC 7240; 'respond-async' asks for a 202 and a job instead of waiting for the answer",
        "schema": {"type": "string"},
        "example": "respond-async",
    },
    {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "description": "makes a retried async submit return the same job (another body: 422; still submitting: 409)",
        "schema": {"type": "string"},
    },
]


def example_infer_request(model: ModelConfig) -> dict[str, Any]:
    """A request the model accepts: one row per free dimension, every element at the low end of its range."""
    inputs = []
    for spec in model.inputs:
        shape = [1 if dim == -1 else dim for dim in spec.shape]
        count = 1
        for dim in shape:
            count *= dim
        value: Any = 0
        if spec.datatype == "BOOL":
            value = False
        elif spec.datatype == "BYTES":
            value = ""
        elif spec.value_range is not None and spec.value_range.minimum is not None:
            value = spec.value_range.minimum
        inputs.append({"name": spec.name, "shape": shape, "datatype": spec.datatype, "data": [value] * count})
    return {"id": "example-1", "inputs": inputs}


@contextmanager
def _offline_region() -> Iterator[None]:
    """The handler creates its (unused here) SageMaker client at import, which needs a region, not a network."""
    missing = "AWS_REGION" not in os.environ and "AWS_DEFAULT_REGION" not in os.environ
    if missing:
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    try:
        yield
    finally:
        if missing:
            os.environ.pop("AWS_DEFAULT_REGION", None)


def generate() -> dict[str, Any]:
    """The document: the resolver's paths, enriched with the OIP schemas, headers and statuses."""
    with _offline_region():
        handler = importlib.import_module("functions.handlers.router.handler")
    config = handler.config
    document: dict[str, Any] = json.loads(
        handler.app.get_openapi_json_schema(
            title=TITLE,
            version=config.server.version,
            description='Errors are {"error": "<message>"}. See README.md (\'API\') for the status table.',
        )
    )
    routes = {(route.method.lower(), route.resource): route for route in api.ROUTES}
    seen: set[api.ApiRoute] = set()
    example_model = config.models[0] if config.models else None
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            route = routes.get((method, path))
            if route is None:
                raise ValueError(
                    f"the resolver serves {method.upper()} {path}, which functions/config/api_routes.py lacks"
                )
            seen.add(route)
            summary, statuses = _operation(route)
            operation["summary"] = summary
            answered = {**statuses, **GATEWAY_RESPONSES}
            operation["responses"] = {
                str(status): _response(route, status, *answered[status]) for status in sorted(answered)
            }
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    parameter["schema"]["minLength"] = 1
                    if parameter["name"] == "job_id":
                        parameter["schema"]["pattern"] = JOB_ID_PATTERN.pattern
                    if parameter["name"] == "model" and example_model is not None:
                        parameter["example"] = example_model.name
            if route in api.INFER_ROUTES:
                operation["parameters"] = [*operation.get("parameters", []), *copy.deepcopy(INFER_HEADERS)]
                media: dict[str, Any] = {"schema": _ref("InferRequest")}
                if example_model is not None:
                    media["example"] = example_infer_request(example_model)
                operation["requestBody"] = {"required": True, "content": {JSON: media}}
    missing = set(api.ROUTES) - seen
    if missing:
        raise ValueError(f"the resolver lacks routes {sorted(r.resource for r in missing)}")
    document["components"] = {"schemas": copy.deepcopy(SCHEMAS)}
    return document


def _operation(route: api.ApiRoute) -> tuple[str, dict[int, tuple[str, str]]]:
    if route in VERSIONED:
        summary, unversioned = VERSIONED[route]
        return summary, OPERATIONS[unversioned][1]
    return OPERATIONS[route]


def _response(route: api.ApiRoute, status: int, description: str, schema: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description, "content": {JSON: {"schema": _ref(schema)}}}
    headers = dict(HEADERS_BY_STATUS.get(status, {}))
    if route in api.INFER_ROUTES and status == 200:
        headers["X-Inference-Degraded"] = DEGRADED
    if route in api.INFER_ROUTES and status == 202:
        headers["Location"] = {
            "description": "the job's URL",
            "required": True,
            "schema": {"type": "string", "pattern": "^/v2/jobs/[^/]+$"},
        }
        headers["Preference-Applied"] = {
            "description": "present when the client asked with 'Prefer: respond-async'",
            "required": False,
            "schema": {"type": "string", "enum": ["respond-async"]},
        }
        headers["X-Inference-Degraded"] = DEGRADED
    if headers:
        response["headers"] = copy.deepcopy(headers)
    return response


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed document is stale")
    parser.add_argument("--output", type=Path, default=DOCUMENT_PATH)
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        if not args.output.exists() or args.output.read_text() != text:
            print(f"{args.output} is stale: run `python -m local.openapi`", file=sys.stderr)
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
