"""What CloudWatch Logs does with the router's log lines in AWS, done in local mode.

The router writes its lines through ``RouterClients.log_sink``; :class:`LocalLogSubscriptions` is that sink
here. Each line is printed (the router's log, as before); every EMF document, the router's and the shadow
worker's, is appended to :func:`local_metrics_path` (JSON lines: ``python -m ops rollout status --local``
reads it, as CloudWatch would turn the documents into metrics); each shadow line is queued for an
in-process shadow worker thread, as the subscription filter on the router's log group delivers it to the
shadow worker Lambda (infra/constructs/shadow.py). The thread replays it against the shadow's local endpoint,
so a shadow call never delays the primary answer. Each capture line is appended to its model's and day's file
(local/capture.py), as the other subscription filter and Firehose deliver it to the capture bucket
(infra/constructs/capture.py).
"""

from __future__ import annotations

import base64
import gzip
import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

from functions.config.telemetry import SHADOW_LINE_KEY
from functions.domain.shadow import ShadowRunner
from functions.handlers.shadow.app import create_handler
from local.capture import LocalCaptureWriter, is_capture_line
from ops.targets import LOCAL_STATE_FILE

# A marker the queue carries to stop the worker thread.
_STOP: Final[object] = object()
_SHADOW_LINE_START: Final[str] = f'{{"{SHADOW_LINE_KEY}"'


def local_metrics_path() -> Path:
    """``.local/metrics.jsonl`` next to the running stack's state file (gitignored)."""
    return LOCAL_STATE_FILE.parent / "metrics.jsonl"


def subscription_event(lines: Sequence[str], log_group: str = "/aws/lambda/local-router") -> dict[str, Any]:
    """A CloudWatch Logs subscription event carrying ``lines``, as Lambda receives one: ``awslogs.data`` is the
    gzipped, base64-encoded DATA_MESSAGE document."""
    now_ms = int(time.time() * 1000)
    document = {
        "messageType": "DATA_MESSAGE",
        "owner": "000000000000",
        "logGroup": log_group,
        "logStream": "local",
        "subscriptionFilters": ["local-shadow"],
        "logEvents": [{"id": str(index), "timestamp": now_ms, "message": line} for index, line in enumerate(lines)],
    }
    data = base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
    return {"awslogs": {"data": data}}


class LocalLogSubscriptions:
    """The router's log sink in local mode. ``runner``: the shadow worker's (None: no model has a shadow, no
    thread); ``metrics_path``: where EMF documents go (None: nowhere, as in tests that do not read them);
    ``capture``: where capture lines go (None: only printed)."""

    def __init__(
        self,
        runner: ShadowRunner | None,
        metrics_path: Path | None = None,
        echo: Callable[[str], None] = print,
        capture: LocalCaptureWriter | None = None,
    ) -> None:
        self.metrics_path = metrics_path
        self.capture = capture
        if metrics_path is not None:
            metrics_path.parent.mkdir(parents=True, exist_ok=True)
        self.echo = echo
        self._lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._thread: threading.Thread | None = None
        # Shadow lines handed to the worker, and those it has finished with: equal once it is idle.
        self.queued = 0
        self.handled = 0
        if runner is not None:
            self._handler = create_handler(runner, emit=self.write)
            self._thread = threading.Thread(target=self._work, name="local-shadow-worker", daemon=True)
            self._thread.start()

    def __call__(self, line: str) -> None:
        """The sink: print the line, keep an EMF document or a capture line, hand a shadow line to the worker."""
        if line.startswith(_SHADOW_LINE_START):
            self.echo(line)
            if self._thread is not None:
                self.queued += 1
                self._queue.put(line)
            return
        if self.capture is not None and is_capture_line(line):
            self.echo(line)
            self._deliver_capture(line, self.capture)
            return
        self.write(line)

    def _deliver_capture(self, line: str, capture: LocalCaptureWriter) -> None:
        # Delivery is Firehose's business in AWS, after the router has logged the line: a failure here is
        # reported, never raised into the request that logged it.
        try:
            capture.write(line)
        except (OSError, ValueError) as error:
            self.echo(json.dumps({"capture_delivery_error": f"{type(error).__name__}: {error}"}))

    def write(self, line: str) -> None:
        """Print ``line`` and append it to the metrics file when it is an EMF document."""
        self.echo(line)
        if self.metrics_path is None:
            return
        try:
            document = json.loads(line)
        except ValueError:
            return
        if not isinstance(document, dict) or "_aws" not in document:
            return
        with self._lock, self.metrics_path.open("a", encoding="utf-8") as metrics:
            metrics.write(line.rstrip("\n") + "\n")

    def _work(self) -> None:
        while (line := self._queue.get()) is not _STOP:
            assert isinstance(line, str)
            try:
                self._handler(subscription_event([line]), None)
            except Exception as error:  # the worker in AWS would fail this invocation: its line is lost alike
                self.echo(json.dumps({"shadow_worker_error": f"{type(error).__name__}: {error}"}))
            finally:
                self.handled += 1

    def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """Whether the worker finished every line queued so far within ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while self.handled < self.queued:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        """Let the worker finish the lines already queued (up to ``timeout_s``), then end its thread."""
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout_s)
            self._thread = None
