"""The unit tier's promise, enforced: a unit test starts no process and opens no socket. A test that needs
either belongs in tests/functional (tests/README.md)."""

from __future__ import annotations

import os
import socket
import subprocess
from typing import Any, NoReturn

import pytest


def _refuse(what: str) -> Any:
    def refused(*_: object, **__: object) -> NoReturn:
        raise AssertionError(f"a unit test may not {what}: move it to tests/functional")

    return refused


@pytest.fixture(autouse=True)
def _no_process_and_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(subprocess.Popen, "__init__", _refuse("start a process"))
    monkeypatch.setattr(os, "fork", _refuse("fork"))
    monkeypatch.setattr(socket.socket, "connect", _refuse("open a connection"))
    monkeypatch.setattr(socket.socket, "bind", _refuse("listen on a socket"))
