"""Which serving image an async endpoint's instance type needs: one rule, used by the model stack and preflight."""

from __future__ import annotations

from typing import Final, Literal

ImageVariant = Literal["cpu", "gpu"]

# SageMaker's NVIDIA GPU instance families all start with "g" or "p" (g4dn, g5, g6, g6e, p3, p3dn, p4d, p4de,
# p5, p5e); no CPU family does (c5, m5, r5, t2, c6i, m6g, inf2, trn1 ...). Those get the CUDA image
# (docker/serving-gpu, several GB); every other family gets the CPU image (docker/serving), which also runs on
# Inferentia/Trainium hosts, without their accelerators.
GPU_FAMILY_INITIALS: Final[frozenset[str]] = frozenset({"g", "p"})


def instance_family(instance_type: str) -> str:
    """``ml.g5.xlarge`` -> ``g5``."""
    return instance_type.split(".")[1]


def image_variant(instance_type: str) -> ImageVariant:
    """The serving image variant an ``image: "asset"`` endpoint on ``instance_type`` builds."""
    return "gpu" if instance_family(instance_type)[0] in GPU_FAMILY_INITIALS else "cpu"
