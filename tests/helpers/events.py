"""Sample events from ``events/`` and a handler's answer read back as status, headers and JSON body."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"


@dataclass(frozen=True)
class HandlerAnswer:
    status: int
    headers: dict[str, str]
    body: Any


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS_DIR / "router" / f"{name}.json").read_text())
    return event


def answer_of(result: dict[str, Any]) -> HandlerAnswer:
    headers = {**(result.get("headers") or {})}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name] = ", ".join(values)
    body = result.get("body")
    return HandlerAnswer(result["statusCode"], headers, json.loads(body) if body else None)
