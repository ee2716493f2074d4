"""Dynamic batching: concurrent requests to one model share one onnxruntime call.

A request thread hands its :class:`~functions.adapters.onnx_model.PreparedRequest` to
:meth:`DynamicBatcher.infer` and blocks. One runner thread gathers what is queued into a batch — requests
with the same :attr:`~functions.adapters.onnx_model.PreparedRequest.batch_key` only, up to
``max_batch_size`` rows, waiting at most ``max_queue_delay_ms`` after the oldest request arrived for the
batch to fill — stacks their inputs along dim 0, runs the model once and splits every output back by each
request's row count. A request is never split: one larger than ``max_batch_size`` runs alone.

A request's failure never fails its neighbours: when a stacked run raises, each request of the batch is
run alone, so only the guilty one gets the error.

Example:
    >>> batcher = DynamicBatcher(model, BatchingSettings(max_batch_size=32, max_queue_delay_ms=2.0))
    >>> outputs = batcher.infer(model.prepare(request))  # output name -> this request's rows
    >>> batcher.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

import numpy as np

from functions.config.model_types import (
    BATCHING_ENV,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_QUEUE_DELAY_MS,
    MAX_BATCH_SIZE_ENV,
    MAX_QUEUE_DELAY_MS_ENV,
)

if TYPE_CHECKING:
    from functions.adapters.onnx_model import PreparedRequest
    from functions.config.model_types import BatchingConfig

logger = logging.getLogger(__name__)

_TRUE: Final[frozenset[str]] = frozenset({"1", "true", "on", "yes"})
_FALSE: Final[frozenset[str]] = frozenset({"0", "false", "off", "no"})


class BatchingConfigError(ValueError):
    """A batching environment variable has a value the server cannot use."""


class BatchModel(Protocol):
    """What the batcher needs of a model (:class:`~functions.adapters.onnx_model.OnnxModel` has it)."""

    @property
    def batchable(self) -> bool: ...

    def run(self, output_names: Sequence[str], feeds: Mapping[str, Any]) -> list[Any]: ...


@dataclass(frozen=True)
class BatchingSettings:
    """How the server batches; one container serves one model, so its environment configures that model.

    ``SERVING_BATCHING`` (on|off, default on), ``SERVING_MAX_BATCH_SIZE`` (rows, default 32),
    ``SERVING_MAX_QUEUE_DELAY_MS`` (default 1.0). The templates set them from the model's ``batching`` block
    (:meth:`functions.config.model_types.BatchingConfig.environment`); local mode uses :meth:`from_config`.

    Example:
        >>> BatchingSettings.from_environ({"SERVING_MAX_BATCH_SIZE": "64"}).max_batch_size
        64
    """

    enabled: bool = True
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_queue_delay_ms: float = DEFAULT_MAX_QUEUE_DELAY_MS

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise BatchingConfigError(f"SERVING_MAX_BATCH_SIZE must be at least 1, got {self.max_batch_size}")
        if not 0 <= self.max_queue_delay_ms <= 10_000:
            raise BatchingConfigError(
                f"SERVING_MAX_QUEUE_DELAY_MS must be between 0 and 10000, got {self.max_queue_delay_ms}"
            )

    @classmethod
    def from_config(cls, config: BatchingConfig) -> BatchingSettings:
        """The settings a model's ``batching`` block asks for (what its container's environment carries)."""
        return cls(config.enabled, config.max_batch_size, config.max_queue_delay_ms)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> BatchingSettings:
        switch = environ.get(BATCHING_ENV, "on").strip().lower()
        if switch not in _TRUE | _FALSE:
            raise BatchingConfigError(f"{BATCHING_ENV} must be on or off, got {switch!r}")
        try:
            max_batch_size = int(environ.get(MAX_BATCH_SIZE_ENV, DEFAULT_MAX_BATCH_SIZE))
            delay = float(environ.get(MAX_QUEUE_DELAY_MS_ENV, DEFAULT_MAX_QUEUE_DELAY_MS))
        except ValueError as error:
            raise BatchingConfigError(f"batching setting is not a number: {error}") from error
        return cls(enabled=switch in _TRUE, max_batch_size=max_batch_size, max_queue_delay_ms=delay)


@dataclass
class BatchStats:
    """Counters a caller can read to see batching happen (the server exposes them at ``GET /_batching``)."""

    batches: int = 0
    requests: int = 0
    rows: int = 0
    largest_batch_requests: int = 0
    largest_batch_rows: int = 0
    fallbacks: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class _Pending:
    prepared: PreparedRequest
    future: Future[dict[str, Any]]
    enqueued: float = field(default_factory=time.monotonic)


class DynamicBatcher:
    """Gathers concurrent requests to one model into stacked onnxruntime calls (see the module docstring)."""

    def __init__(self, model: BatchModel, settings: BatchingSettings, *, wait_only_for_admitted: bool = False) -> None:
        """``wait_only_for_admitted``: stop waiting for a batch to fill as soon as every request announced with
        :meth:`admit` is queued, instead of always waiting ``max_queue_delay_ms`` for more to arrive.

        A server that admits each request as it enters thus never delays a lone request for neighbours that
        are not coming (a closed-loop client at concurrency 1 would pay the whole delay on every call).
        """
        if not model.batchable:
            raise ValueError("the model has no free batch dim: its requests cannot be stacked")
        self.model = model
        self.settings = settings
        self._delay_s = settings.max_queue_delay_ms / 1000.0
        self._pending: list[_Pending] = []
        self._pending_rows = 0
        self._wait_only_for_admitted = wait_only_for_admitted
        self._admitted = 0
        self._condition = threading.Condition()
        self._closed = False
        self._stats = BatchStats()
        self._stats_lock = threading.Lock()
        self._runner = threading.Thread(target=self._run_forever, name="batch-runner", daemon=True)
        self._runner.start()

    def admit(self) -> None:
        """Announce a request that will reach :meth:`infer` (admitted=True) or :meth:`withdraw` soon."""
        with self._condition:
            self._admitted += 1

    def withdraw(self) -> None:
        """An admitted request will not reach :meth:`infer` (it failed validation)."""
        with self._condition:
            self._admitted -= 1
            if self._admitted == 0 and self._pending:
                self._condition.notify()

    def infer(
        self, prepared: PreparedRequest, timeout: float | None = None, *, admitted: bool = False
    ) -> dict[str, Any]:
        """This request's outputs (name → array); raises what running it raised.

        ``admitted``: the request was announced with :meth:`admit`. Raises TimeoutError when ``timeout``
        seconds pass first; the request is then dropped if it has not started running yet.
        """
        pending = _Pending(prepared, Future())
        with self._condition:
            if admitted:
                self._admitted -= 1
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(pending)
            self._pending_rows += prepared.rows
            # Wake the runner only when it may act: it sleeps on an empty queue, or waits for a full batch or
            # for the last admitted request.
            if (
                len(self._pending) == 1
                or self._pending_rows >= self.settings.max_batch_size
                or (self._wait_only_for_admitted and self._admitted == 0)
            ):
                self._condition.notify()
        try:
            return pending.future.result(timeout)
        except TimeoutError:
            pending.future.cancel()
            raise

    def stats(self) -> BatchStats:
        with self._stats_lock:
            return BatchStats(**self._stats.as_dict())

    def close(self) -> None:
        """Stop after running what is queued."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._runner.join(timeout=10)

    def _run_forever(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self._execute(batch)
            except Exception as error:  # a bug here must not leave callers blocked forever
                logger.exception("batch runner failed")
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(error)

    def _next_batch(self) -> list[_Pending] | None:
        """The next batch to run, [] when every gathered request was cancelled, None once closed and empty."""
        with self._condition:
            while not self._pending:
                if self._closed:
                    return None
                self._condition.wait()
            while not self._closed:
                oldest = self._pending[0]
                if self._rows_for(oldest.prepared.batch_key) >= self.settings.max_batch_size:
                    break
                if self._wait_only_for_admitted and self._admitted == 0:
                    break
                remaining = oldest.enqueued + self._delay_s - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            return self._take_batch()

    def _rows_for(self, key: object) -> int:
        return sum(item.prepared.rows for item in self._pending if item.prepared.batch_key == key)

    def _take_batch(self) -> list[_Pending]:
        """Remove and return the oldest request and the queued ones that stack with it, oldest first."""
        key = self._pending[0].prepared.batch_key
        batch: list[_Pending] = []
        rows = 0
        kept: list[_Pending] = []
        full = False
        for item in self._pending:
            fits = not batch or rows + item.prepared.rows <= self.settings.max_batch_size
            if full or item.prepared.batch_key != key or not fits:
                # Once one same-key request does not fit, later ones wait too, so each key stays in order.
                full = full or (item.prepared.batch_key == key and not fits)
                kept.append(item)
            elif item.future.set_running_or_notify_cancel():
                batch.append(item)
                rows += item.prepared.rows
        self._pending = kept
        self._pending_rows = sum(item.prepared.rows for item in kept)
        return batch

    def _execute(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        if len(batch) == 1:
            self._run_alone(batch[0])
            self._count(batch, fallback=False)
            return
        try:
            outputs = self._run_stacked([item.prepared for item in batch])
        except Exception as error:
            name = type(error).__name__
            logger.warning("stacked run of %d requests failed (%s: %s); running each alone", len(batch), name, error)
            for item in batch:
                self._run_alone(item)
            self._count(batch, fallback=True)
            return
        for item, output in zip(batch, outputs, strict=True):
            item.future.set_result(output)
        self._count(batch, fallback=False)

    def _run_alone(self, item: _Pending) -> None:
        prepared = item.prepared
        try:
            results = self.model.run(prepared.output_names, prepared.feeds)
        except Exception as error:
            item.future.set_exception(error)
            return
        item.future.set_result(dict(zip(prepared.output_names, results, strict=True)))

    def _run_stacked(self, batch: Sequence[PreparedRequest]) -> list[dict[str, Any]]:
        """Run ``batch`` as one call; each request's outputs, split by its row count."""
        row_counts = [prepared.rows for prepared in batch]
        total = sum(row_counts)
        feeds: dict[str, Any] = {}
        for name in batch[0].feeds:
            parts = [prepared.feeds[name] for prepared in batch]
            for prepared, part in zip(batch, parts, strict=True):
                if part.shape[0] != prepared.rows:
                    raise ValueError(f"input {name!r} has {part.shape[0]} rows, the request says {prepared.rows}")
            feeds[name] = np.concatenate(parts)
        output_names = list(dict.fromkeys(name for prepared in batch for name in prepared.output_names))
        results = self.model.run(output_names, feeds)
        offsets = np.cumsum(row_counts)[:-1]
        split: dict[str, list[Any]] = {}
        for name, array in zip(output_names, results, strict=True):
            values = np.asarray(array)
            if values.ndim == 0 or values.shape[0] != total:
                raise ValueError(f"output {name!r} has shape {values.shape}, not {total} rows")
            split[name] = np.split(values, offsets)
        return [{name: split[name][index] for name in prepared.output_names} for index, prepared in enumerate(batch)]

    def _count(self, batch: list[_Pending], *, fallback: bool) -> None:
        rows = sum(item.prepared.rows for item in batch)
        with self._stats_lock:
            stats = self._stats
            stats.batches += 1
            stats.requests += len(batch)
            stats.rows += rows
            stats.largest_batch_requests = max(stats.largest_batch_requests, len(batch))
            stats.largest_batch_rows = max(stats.largest_batch_rows, rows)
            stats.fallbacks += int(fallback)
