"""Promote and rollback as edits of the model config file: one ``traffic`` entry changes, the rest of the file
keeps its bytes (the repository's models.json lays small objects on one line, which ``json.dumps`` would not)."""

from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ops.rollout.summary import RolloutError

TRAFFIC_KEY = "traffic"


@dataclass(frozen=True)
class ConfigEdit:
    path: Path
    before: str
    after: str

    @property
    def diff(self) -> str:
        return "".join(
            difflib.unified_diff(
                self.before.splitlines(keepends=True),
                self.after.splitlines(keepends=True),
                fromfile=f"a/{self.path}",
                tofile=f"b/{self.path}",
            )
        )


def read_config(path: Path) -> tuple[str, dict[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RolloutError(f"{path}: no such model config file") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise RolloutError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or not isinstance(document.get("models"), list):
        raise RolloutError(f"{path}: has no 'models' list")
    return text, document


def _model(document: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    for model in document["models"]:
        if model.get("name") == name:
            return dict(model)
    known = ", ".join(str(model.get("name")) for model in document["models"])
    raise RolloutError(f"{path}: unknown model {name!r} (models: {known})")


def promote(path: Path, model_name: str, version: str) -> ConfigEdit:
    """All of the model's traffic to ``version``, which must be a declared, non-shadow version."""
    text, document = read_config(path)
    model = _model(document, model_name, path)
    versions = {str(model["version"]): None} | {str(entry["version"]): entry for entry in model.get("versions", [])}
    if version not in versions:
        raise RolloutError(f"{path}: model {model_name!r} has no version {version!r} (versions: {', '.join(versions)})")
    entry = versions[version]
    if entry is not None and "shadow" in entry:
        raise RolloutError(
            f"{path}: version {version!r} of model {model_name!r} is a shadow: it serves no caller. To promote it, "
            "first remove its 'shadow' block (it then takes live traffic), then promote it"
        )
    return _set_traffic(path, text, document, model_name, {version: 100})


def rollback(path: Path, model_name: str) -> ConfigEdit:
    """All of the model's traffic back to its primary (top-level) version."""
    text, document = read_config(path)
    model = _model(document, model_name, path)
    return _set_traffic(path, text, document, model_name, {str(model["version"]): 100})


def _set_traffic(
    path: Path, text: str, document: dict[str, Any], model_name: str, traffic: dict[str, int]
) -> ConfigEdit:
    expected = copy.deepcopy(document)
    for model in expected["models"]:
        if model.get("name") == model_name:
            model[TRAFFIC_KEY] = traffic
    after = _edit_text(text, model_name, traffic)
    if after is None or json.loads(after) != expected:
        raise RolloutError(
            f"{path}: could not change only {model_name!r}'s traffic in place (unusual layout); "
            f'set "traffic": {json.dumps(traffic)} in it by hand'
        )
    return ConfigEdit(path, text, after)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _value_end(lines: list[str], start: int, indent: int) -> int:
    """The last line of the value that begins on ``lines[start]`` at key indent ``indent``."""
    if re.search(r"[\[{]\s*$", lines[start]) is None:
        return start
    end = start + 1
    while end < len(lines) and _indent(lines[end]) > indent:
        end += 1
    return end


def _render(key_indent: str, traffic: dict[str, int], multiline: bool, comma: bool) -> list[str]:
    if multiline:
        body = json.dumps(traffic, indent=2).splitlines()
        rendered = [f'{key_indent}"{TRAFFIC_KEY}": {body[0]}'] + [key_indent + line for line in body[1:]]
    else:
        rendered = [f'{key_indent}"{TRAFFIC_KEY}": {json.dumps(traffic)}']
    if comma:
        rendered[-1] += ","
    return [line + "\n" for line in rendered]


def _edit_text(text: str, model_name: str, traffic: dict[str, int]) -> str | None:
    lines = text.splitlines(keepends=True)
    name_line = re.compile(rf'^\s*"name":\s*{re.escape(json.dumps(model_name))},?\s*$')
    starts = [index for index, line in enumerate(lines) if name_line.match(line)]
    for start in starts:
        indent = _indent(lines[start])
        end = start
        while end + 1 < len(lines) and _indent(lines[end + 1]) >= indent:
            end += 1
        keys = {
            match.group(1): index
            for index in range(start, end + 1)
            if _indent(lines[index]) == indent and (match := re.match(r'\s*"([^"]+)":', lines[index]))
        }
        if "version" not in keys or "route" not in keys:
            continue  # a "name" inside an input or output spec
        key_indent = " " * indent
        if TRAFFIC_KEY in keys:
            first = keys[TRAFFIC_KEY]
            last = _value_end(lines, first, indent)
            comma = lines[last].rstrip().endswith(",")
            new = _render(key_indent, traffic, last > first, comma)
            return "".join(lines[:first] + new + lines[last + 1 :])
        route_end = _value_end(lines, keys["route"], indent)
        comma = lines[route_end].rstrip().endswith(",")
        if not comma:
            lines[route_end] = lines[route_end].rstrip("\n").rstrip() + ",\n"
        new = _render(key_indent, traffic, route_end > keys["route"], comma)
        return "".join(lines[: route_end + 1] + new + lines[route_end + 1 :])
    return None
