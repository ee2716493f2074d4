"""Cold-start hygiene: import a package's submodule without running the package's ``__init__``.

``aws_lambda_powertools.event_handler/__init__`` imports every resolver Powertools has (AppSync with
asyncio, Bedrock, VPC Lattice, HTTP...), about 25 ms of a cold start, while the router uses only the REST
one. :func:`defer_package_init` registers the package with its search path but without its body, so
``import package.submodule`` loads just that submodule, and a name the ``__init__`` imports from one of its
submodules (``from package import Name``) loads just that submodule: Powertools' REST resolver imports its
event classes from ``utilities.data_classes``, whose ``__init__`` loads all ~40 event sources (about 14 ms).
The first lookup of any other name on the package runs the real ``__init__``, so code importing the
package the usual way still gets everything.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any


def defer_package_init(name: str) -> None:
    """Make ``name`` importable as a package whose ``__init__`` runs only when first needed."""
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.submodule_search_locations is None or spec.loader is None:
        raise ImportError(f"{name} is not an importable package")
    module = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def load_rest(attribute: str) -> Any:
        # `from package import submodule` asks for the attribute first: answer with the submodule alone.
        if importlib.util.find_spec(f"{name}.{attribute}") is not None:
            return importlib.import_module(f"{name}.{attribute}")
        if spec.origin is not None and (source := imported_from(name, spec.origin, attribute)) is not None:
            value = getattr(importlib.import_module(source[0]), source[1])
            setattr(module, attribute, value)
            return value
        del module.__dict__["__getattr__"]
        loader.exec_module(module)
        return getattr(module, attribute)

    module.__dict__["__getattr__"] = load_rest
    sys.modules[name] = module
    parent_name, _, child = name.rpartition(".")
    parent: ModuleType | None = sys.modules.get(parent_name) if parent_name else None
    if parent is not None:
        setattr(parent, child, module)


def imported_from(package: str, init_path: str, attribute: str) -> tuple[str, str] | None:
    """(submodule, name there) for a name the package's ``__init__`` imports from its own submodule."""
    for node in ast.parse(Path(init_path).read_text(encoding="utf-8")).body:
        if not isinstance(node, ast.ImportFrom) or not node.module:
            continue
        source = f"{package}.{node.module}" if node.level == 1 else node.module
        for alias in node.names:
            if (alias.asname or alias.name) == attribute and node.level <= 1 and source.startswith(f"{package}."):
                return source, alias.name
    return None
