"""Which versions of a model the router serves, which one a request names, and which one serves it.

Every route that names a version (``/v2/models/{model}/versions/{version}/...``) and every infer body that
carries ``model_version`` resolves it here. A request that pins none is given one by the model's ``traffic``
weights from a stable hash, so a retry meets the version the first try met: the hash covers the model, the
caller and the request's sticky key (its ``Idempotency-Key``, else its ``X-Routing-Key``), else the body's
SHA-256.

Example:
    >>> resolve_version(iris, "1")
    '1'
    >>> resolve_version(iris, "7")
    ModelNotFoundError: model 'iris' has no version '7' (versions: '1')
    >>> pick_version(iris, caller="alice", sticky_key="order-17", body=b"...").version
    '2'
"""

from __future__ import annotations

import hashlib
from typing import Final

from functions.config.model_types import ModelConfig, VersionConfig
from functions.domain.echo import clip
from functions.domain.errors import ModelNotFoundError

# Weights are whole percent; the hash picks one of 10,000 buckets, so each percent is 100 buckets.
BUCKETS: Final[int] = 10_000
_BUCKETS_PER_PERCENT: Final[int] = BUCKETS // 100
# The headers that make a request sticky, in order: an Idempotency-Key already names "the same request".
ROUTING_KEY_HEADER: Final[str] = "X-Routing-Key"


def model_versions(model: ModelConfig) -> tuple[str, ...]:
    """The versions of ``model`` served here, the primary first."""
    return tuple(entry.version for entry in model.versions)


def resolve_version(model: ModelConfig, version: str | None) -> str:
    """The version a request pins, or the model's primary when it pins none; an unknown one is a 404
    naming the versions that exist."""
    if version is None:
        return model.version
    if version not in model.version_by_name:
        known = ", ".join(repr(known) for known in model_versions(model))
        raise ModelNotFoundError(f"model {model.name!r} has no version {clip(version)} (versions: {known})")
    return version


def routing_bucket(model: str, caller: str | None, key: str) -> int:
    """The request's bucket in [0, BUCKETS): the same model, caller and key always land in the same one."""
    digest = hashlib.sha256(f"{model}\0{caller or ''}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def pick_version(
    model: ModelConfig, *, caller: str | None, sticky_key: str | None, body: bytes, pinned: str | None = None
) -> VersionConfig:
    """The version that serves the request: the one it pins (a version route, a body's ``model_version``),
    else the one its bucket falls in by the ``traffic`` weights (a shadow version has none)."""
    if pinned is not None:
        return model.version_by_name[resolve_version(model, pinned)]
    weighted = [entry for entry in model.versions if entry.weight > 0]
    if len(weighted) == 1:
        return weighted[0]
    key = sticky_key or hashlib.sha256(body).hexdigest()
    bucket = routing_bucket(model.name, caller, key)
    upper = 0
    for entry in weighted[:-1]:
        upper += entry.weight * _BUCKETS_PER_PERCENT
        if bucket < upper:
            return entry
    return weighted[-1]  # the weights sum to 100 (the config reader checks): the rest is the last one's
