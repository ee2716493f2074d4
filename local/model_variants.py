"""Model configs for local runs, tests and benches: ``functions/models.json`` plus variants of one of its models.

    >>> path = write_models_with_variants(tmp, {"iris-local": {"route": {"sync": "lambda"}}})

Each variant is a copy of the base model as the file has it (default ``iris``) under the variant's name, with
the given top-level fields replaced (``route``, ``resilience``, ...). The base's own name changes the base itself.
:func:`write_models_without_in_lambda` writes the file minus its ``lambda``-routed models: a router that never
loads onnxruntime.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from functions.config.models import DEFAULT_CONFIG_PATH


def models_with_variants(
    variants: Mapping[str, Mapping[str, Any]], *, base: str = "iris", source: Path = DEFAULT_CONFIG_PATH
) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    models: list[dict[str, Any]] = document["models"]
    template = next((model for model in models if model["name"] == base), None)
    if template is None:
        raise ValueError(f"{source}: no model {base!r} to make variants of")
    pristine = copy.deepcopy(template)
    for name, changes in variants.items():
        if name == base:
            template.update(copy.deepcopy(dict(changes)))
            continue
        models.append({**copy.deepcopy(pristine), **copy.deepcopy(dict(changes)), "name": name})
    return document


def write_models_with_variants(
    directory: Path, variants: Mapping[str, Mapping[str, Any]], *, base: str = "iris"
) -> Path:
    """Write :func:`models_with_variants` to ``directory/models.json`` and return its path."""
    path = directory / "models.json"
    path.write_text(json.dumps(models_with_variants(variants, base=base)), encoding="utf-8")
    return path


def write_models_without_in_lambda(directory: Path, *, source: Path = DEFAULT_CONFIG_PATH) -> Path:
    """Write ``source`` without its ``lambda``-routed models to ``directory/models.json`` and return its path."""
    document: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    document["models"] = [model for model in document["models"] if model.get("route", {}).get("sync") != "lambda"]
    path = directory / "models.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path
