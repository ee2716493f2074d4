"""Resolve AWS Deep Learning Container (DLC) image URIs offline with the SageMaker SDK's ``image_uris``.

The SDK ships the DLC registry (framework -> version -> region -> account, tag) as JSON inside the
wheel, so resolving a URI reads files and makes no AWS call: it is safe at synth time.

The SDK is an optional extra (``pip install -e '.[dlc]'``). It is imported inside
:func:`resolve_dlc_image` only, so this module imports without it, and nothing under ``functions/``
imports this module: the SDK never reaches a Lambda asset or the router's cold start. It caps
protobuf below 7, which is why it lives in its own extra rather than in ``dev``.
"""

from __future__ import annotations

import importlib
from typing import Any, Final

__all__ = ["DLC_EXTRA_INSTALL_HINT", "DlcResolutionError", "resolve_dlc_image"]

# The v3 SDK's home of image_uris; the ``sagemaker-core`` distribution provides it without the
# ``sagemaker`` meta-package's train/serve/mlops dependencies.
_IMAGE_URIS_MODULE: Final[str] = "sagemaker.core.image_uris"
DLC_EXTRA_INSTALL_HINT: Final[str] = "pip install -e '.[dlc]'"


class DlcResolutionError(Exception):
    """A Deep Learning Container URI could not be resolved: SDK missing, or an unknown combination."""


def _load_image_uris() -> Any:
    """Import the SDK's ``image_uris`` module, or explain which extra provides it."""
    try:
        return importlib.import_module(_IMAGE_URIS_MODULE)
    except ImportError as exc:
        raise DlcResolutionError(
            f"resolving a Deep Learning Container image needs the SageMaker SDK ({_IMAGE_URIS_MODULE}), "
            f"which is not installed: install the 'dlc' extra with `{DLC_EXTRA_INSTALL_HINT}` "
            f"(import failed: {exc})"
        ) from exc


def resolve_dlc_image(
    framework: str,
    version: str,
    *,
    region: str,
    instance_type: str,
    py_version: str | None = None,
    image_scope: str = "inference",
) -> str:
    """Return the ECR URI of an AWS Deep Learning Container, resolved offline from the SDK's bundled JSON.

    Args:
        framework: the SDK's framework key, e.g. ``"pytorch"``, ``"tensorflow"``, ``"xgboost"``.
        version: the framework version, e.g. ``"2.6"``.
        region: the AWS region whose ECR registry hosts the image, e.g. ``"us-east-1"``.
        instance_type: the SageMaker instance type; it picks the CPU or GPU image (``"ml.g5.xlarge"``).
        py_version: e.g. ``"py312"``; default: the only one the SDK lists for that version, if only one.
        image_scope: ``"inference"`` (default) or ``"training"``.

    Raises:
        DlcResolutionError: the ``dlc`` extra is not installed (the message says how to install it), or
            the SDK knows no such framework, version, Python version, region or instance type (the
            message lists what it does know).

    Example:
        >>> resolve_dlc_image(
        ...     "pytorch", "2.6", region="us-east-1", instance_type="ml.g5.xlarge", py_version="py312"
        ... )  # doctest: +SKIP
        '763104351884.dkr.ecr.us-east-1.amazonaws.com/pytorch-inference:2.6-gpu-py312'
    """
    image_uris = _load_image_uris()
    known_frameworks: list[str] = list(image_uris.list_frameworks())
    if framework not in known_frameworks:
        # Checked up front: for an unknown framework the SDK raises FileNotFoundError on its JSON path.
        raise DlcResolutionError(
            f"unknown Deep Learning Container framework {framework!r}; the SageMaker SDK knows: "
            f"{', '.join(sorted(known_frameworks))}"
        )
    try:
        uri = image_uris.retrieve(
            framework,
            region=region,
            version=version,
            py_version=py_version,
            instance_type=instance_type,
            image_scope=image_scope,
        )
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise DlcResolutionError(
            f"no Deep Learning Container for framework={framework!r} version={version!r} "
            f"py_version={py_version!r} region={region!r} instance_type={instance_type!r} "
            f"image_scope={image_scope!r}: {exc}"
        ) from exc
    if not isinstance(uri, str) or not uri:
        raise DlcResolutionError(f"the SageMaker SDK returned no image URI for {framework!r} {version!r}: {uri!r}")
    return uri
