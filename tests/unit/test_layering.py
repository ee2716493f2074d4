"""The layering rule (house-style.md) read from the imports: domain code imports no AWS SDK and no adapter,
infra imports nothing from functions/ but the shared config and API route list."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize(
    "path", python_files("functions/routing") + python_files("functions/common"), ids=lambda p: p.name
)
def test_domain_code_imports_no_aws_sdk_and_no_adapter(path: Path) -> None:
    forbidden = {name for name in imported_modules(path) if name.split(".")[0] in {"boto3", "botocore", "aws_lambda_powertools"}
                 or name.startswith(("functions.adapters", "functions.router", "functions.serving"))}  # fmt: skip
    assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


@pytest.mark.parametrize("path", python_files("infra"), ids=lambda p: str(p.relative_to(ROOT)))
def test_infra_imports_only_shared_config_from_functions(path: Path) -> None:
    allowed = {
        "functions.common.config",
        "functions.common.api",
        "functions.common.datatypes",
        "functions.common.jobs",
        "functions.common.async_settings",
        "functions.router.settings",
    }
    from_functions = {name for name in imported_modules(path) if name.startswith("functions")}
    assert from_functions <= allowed, f"{path.relative_to(ROOT)} imports {sorted(from_functions - allowed)}"
