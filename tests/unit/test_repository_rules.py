"""Rules about the repository itself, made executable: small source files, a repo that explains itself (no
reference to a document it does not hold), comments that say why rather than which ticket changed a line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_SOURCE_LINES = 400
# A markdown document a file names: it must be one this repository holds, or the reader cannot follow it.
MARKDOWN_REFERENCE = re.compile(r"(?<![\w./<>-])([\w./-]*\w\.md)\b")
TICKET_REFERENCE = re.compile(r"\b(?:issue|ticket)\s+#?\d+\b", re.IGNORECASE)
TEXT_SUFFIXES = {".py", ".md", ".json", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".sh", ""}


SOURCE_FOLDERS = ("functions", "serving", "infra", "local", "ops", "bench", "layers", "docs", "docker", "tests", ".ci")
ROOT_FILES = ("README.md", "Makefile", "pyproject.toml", "cdk.json", "constraints.txt", "package.json")
# Generated or installed trees inside the source folders (git ignores them too).
SKIPPED_PARTS = {"build", "__pycache__", "node_modules", ".venv", "cdk.out"}


def tracked_files() -> list[Path]:
    """The repository's own files, read from the tree (a unit test starts no process, so not git)."""
    files = [ROOT / name for name in ROOT_FILES]
    for folder in SOURCE_FOLDERS:
        files += [path for path in (ROOT / folder).rglob("*")
                  if path.is_file() and not SKIPPED_PARTS.intersection(path.relative_to(ROOT).parts)]  # fmt: skip
    assert len(files) > 100, "found almost nothing: is this the repository root?"
    return files


def text_files() -> list[Path]:
    return [
        path for path in tracked_files() if path.suffix in TEXT_SUFFIXES and not path.is_relative_to(ROOT / "events")
    ]


def source_files() -> list[Path]:
    return [path for path in tracked_files() if path.suffix == ".py" and not path.is_relative_to(ROOT / "tests")]


def test_no_source_file_is_over_the_line_limit() -> None:
    sources = source_files()
    assert sources
    too_long = {str(path.relative_to(ROOT)): count for path in sources
                if (count := len(path.read_text().splitlines())) > MAX_SOURCE_LINES}  # fmt: skip
    assert not too_long, f"split these by concern (at most {MAX_SOURCE_LINES} lines): {too_long}"


def missing_documents(text: str, known: set[str]) -> list[str]:
    return [name for name in MARKDOWN_REFERENCE.findall(text) if Path(name).name not in known]


def test_every_document_a_file_names_is_in_the_repository() -> None:
    files = text_files()
    known = {path.name for path in files if path.suffix == ".md"}
    assert "architecture.md" in known
    this_file = Path(__file__).resolve()  # its examples name a missing document on purpose
    hits = [f"{path.relative_to(ROOT)}:{number}: {name}"
            for path in files if path.resolve() != this_file
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
            for name in missing_documents(line, known)]  # fmt: skip
    assert not hits, "\n".join(hits)


def test_no_comment_cites_a_ticket_number() -> None:
    files = text_files()
    assert files
    this_file = Path(__file__).resolve()
    hits = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
            for path in files if path.resolve() != this_file
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
            if TICKET_REFERENCE.search(line)]  # fmt: skip
    assert not hits, "\n".join(hits)


@pytest.mark.parametrize(
    ("text", "missing"),
    [
        ("the limits (notes/elsewhere.md)", ["notes/elsewhere.md"]),
        ("docs/architecture.md says why", []),
        ("see README.md", []),
        ("docs/runbooks/<name with dashes>.md", []),
    ],
)
def test_missing_documents_are_found(text: str, missing: list[str]) -> None:
    assert missing_documents(text, {"architecture.md", "README.md"}) == missing


@pytest.mark.parametrize(
    ("text", "found"),
    [("the alarms of issue 3", True), ("fixed in Issue #12", True), ("an issue with the endpoint", False)],
)
def test_ticket_numbers_are_recognised(text: str, found: bool) -> None:
    assert bool(TICKET_REFERENCE.search(text)) is found


def test_a_unit_test_can_start_no_process() -> None:
    import subprocess  # the unit tier's conftest refuses it; this proves the refusal is in force

    with pytest.raises(AssertionError, match="move it to tests/functional"):
        subprocess.run(["true"], check=False)


def test_a_unit_test_can_open_no_socket() -> None:
    import socket

    with socket.socket() as client, pytest.raises(AssertionError, match="move it to tests/functional"):
        client.connect(("127.0.0.1", 9))
