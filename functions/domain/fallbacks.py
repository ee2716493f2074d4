"""The degraded answers a model may declare (``resilience.fallback`` in models.json) for a request its
endpoint could not answer: a static document, or the last good answer to the same question."""

from __future__ import annotations

import json
from typing import Any

from functions.domain.failures import DegradedBy, FailureReason
from functions.domain.last_good import LastGoodCache, last_good_key
from functions.domain.outcomes import Degraded
from functions.domain.validation import InferRequest


def fallback_answer(request: InferRequest, cause: FailureReason, last_good: LastGoodCache) -> Degraded | None:
    """The configured fallback's answer, marked with why (``cause``) and how, or None: no fallback applies."""
    settings = request.model.resilience
    if settings.fallback == "static" and settings.static_response is not None:
        document: dict[str, Any] = {"model_name": request.model.name, "model_version": request.model.version,
                                    **settings.static_response}  # fmt: skip
        return Degraded(_with_request_id(document, request), cause, DegradedBy.STATIC_FALLBACK)
    if settings.fallback == "last_good":
        # Cached only as a JSON object, without the id of the request it answered (LastGoodCache.put).
        cached = last_good.get(last_good_key(request))
        if cached is None:
            return None
        document = json.loads(cached)
        return Degraded(_with_request_id(document, request), cause, DegradedBy.LAST_GOOD)
    return None


def _with_request_id(document: dict[str, Any], request: InferRequest) -> bytes:
    if request.request_id is not None:
        document["id"] = request.request_id
    return json.dumps(document, separators=(",", ":")).encode()
