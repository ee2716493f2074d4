"""The layering rules read from the imports (docs/architecture.md, 'Who may import whom'), and no import cycle
among the project's modules. Every import counts, a deferred one inside a function too: a cycle that only
closes at run time is still a cycle a reader has to hold in their head."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PACKAGES = ("functions", "serving", "infra", "local", "ops", "bench", "layers")
AWS_SDKS = {"boto3", "botocore", "aws_lambda_powertools", "mypy_boto3_sagemaker_runtime"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            # `from functions.config import models` imports the submodule `models`.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def python_files(*folders: str) -> list[Path]:
    files = sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py") if "build" not in path.parts)
    assert files, f"no Python files under {folders}"
    return files


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for path in python_files(*PROJECT_PACKAGES)}


def imports_within(modules: dict[str, Path], path: Path) -> set[str]:
    return {name for name in imported_modules(path) if name in modules}


@pytest.mark.parametrize("path", python_files("functions/domain"), ids=lambda p: p.name)
def test_domain_imports_only_domain_and_config(path: Path) -> None:
    imported = imported_modules(path)
    forbidden = {name for name in imported if name.split(".")[0] in AWS_SDKS or name.split(".")[0] in {"serving", "numpy", "onnxruntime"}
                 or (name.startswith("functions.") and not name.startswith(("functions.domain", "functions.config")))}  # fmt: skip
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", python_files("functions/config"), ids=lambda p: p.name)
def test_config_imports_nothing_but_config(path: Path) -> None:
    imported = imported_modules(path)
    forbidden = {name for name in imported if name.split(".")[0] in AWS_SDKS
                 or (name.startswith("functions.") and not name.startswith("functions.config"))}  # fmt: skip
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", python_files("functions/adapters", "serving"), ids=lambda p: str(p.relative_to(ROOT)))
def test_adapters_and_serving_never_import_a_handler(path: Path) -> None:
    forbidden = {name for name in imported_modules(path) if name.startswith("functions.handlers")}
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", python_files("infra"), ids=lambda p: str(p.relative_to(ROOT)))
def test_infra_imports_only_shared_config_from_functions(path: Path) -> None:
    from_functions = {name for name in imported_modules(path) if name.startswith("functions")}
    outside_config = {name for name in from_functions if not name.startswith("functions.config")}
    assert not outside_config, f"{path.relative_to(ROOT)} imports {sorted(outside_config)}"


def strongly_connected(graph: dict[str, set[str]]) -> Iterator[list[str]]:
    """Tarjan's algorithm, iterative: each component of more than one module is an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            advanced = False
            for target in edges:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph[target]))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    yield sorted(component)


def test_strongly_connected_finds_a_cycle_and_only_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert list(strongly_connected(graph)) == [["a", "b", "c"]]


def test_no_import_cycle_among_the_project_modules() -> None:
    modules = project_modules()
    assert len(modules) > 50
    # A package's __init__ is not an edge back from its submodules: importing `functions.domain.x` runs
    # `functions.domain/__init__` first, but that is Python's doing, not a dependency the code states.
    graph = {name: imports_within(modules, path) - {name} for name, path in modules.items()}
    cycles = list(strongly_connected(graph))
    assert not cycles, f"import cycles: {cycles}"
