"""Which versions of a model the router serves, and which one a request names.

Every route that names a version (``/v2/models/{model}/versions/{version}/...``) and every infer body that
carries ``model_version`` resolves it here, so serving several versions of a model changes this module only.

Example:
    >>> resolve_version(iris, "1")
    '1'
    >>> resolve_version(iris, "7")
    ModelNotFoundError: model 'iris' has no version '7' (versions: '1')
"""

from __future__ import annotations

from functions.config.model_types import ModelConfig
from functions.domain.echo import clip
from functions.domain.errors import ModelNotFoundError


def model_versions(model: ModelConfig) -> tuple[str, ...]:
    """The versions of ``model`` served here: today the one its config names."""
    return (model.version,)


def resolve_version(model: ModelConfig, version: str | None) -> str:
    """The version a request pins, or the model's current one when it pins none; an unknown one is a 404
    naming the versions that exist."""
    versions = model_versions(model)
    if version is None:
        return versions[0]
    if version not in versions:
        known = ", ".join(repr(known) for known in versions)
        raise ModelNotFoundError(f"model {model.name!r} has no version {clip(version)} (versions: {known})")
    return version
