"""The HTTP side of bench.load: keep-alive clients on asyncio sending prepared requests to local API ports,
priming each environment, a warm-up, then a measured window tallied by status, model and degraded cause."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

WARMUP_S: Final[float] = 1.0
REQUEST_TIMEOUT_S: Final[float] = 35.0  # past API Gateway's 29 s: a request that long is counted as lost
DEGRADED_HEADER: Final[bytes] = b"x-inference-degraded"


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    statuses_by_model: dict[str, Counter[int]] = field(default_factory=dict)
    degraded: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        if b":" in line:
            name, value = line.split(b":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    if length:
        await reader.readexactly(length)
    return status, headers


async def client(
    index: int, port: int, requests: list[tuple[str, bytes]], stop_at: float, measure_from: float, tally: Tally
) -> None:
    """One keep-alive connection sending requests back to back; reconnects after a closed connection."""
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    sent = index
    while (started := time.perf_counter()) < stop_at:
        model, request = requests[sent % len(requests)]
        sent += 1
        try:
            if connection is None:
                connection = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = connection
            writer.write(request)
            status, headers = await asyncio.wait_for(read_answer(reader), REQUEST_TIMEOUT_S)
            if headers.get(b"connection", b"").lower() == b"close":
                writer.close()
                connection = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as error:
            if connection is not None:
                connection[1].close()
                connection = None
            if started >= measure_from:
                tally.unanswered[type(error).__name__] += 1
            continue
        if started < measure_from:
            continue
        tally.latencies_s.append(time.perf_counter() - started)
        tally.statuses[status] += 1
        tally.statuses_by_model.setdefault(model, Counter())[status] += 1
        degraded = headers.get(DEGRADED_HEADER)
        if degraded is not None:
            # "reason; fallback": why the endpoint could not answer and what answered instead.
            tally.degraded[degraded.decode("latin-1")] += 1
    if connection is not None:
        connection[1].close()


async def prime(port: int, requests: list[tuple[str, bytes]]) -> None:
    """Send every request once to one environment and insist on a 200: each input has a last good answer there
    before any fault, whatever the machine's speed (a timed warm-up alone may not reach every input)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for model, request in requests:
            writer.write(request)
            status, _ = await asyncio.wait_for(read_answer(reader), REQUEST_TIMEOUT_S)
            if status != 200:
                raise SystemExit(f"priming {model} on port {port} answered {status} while healthy")
    finally:
        writer.close()


async def drive(
    request_sets: dict[int, list[tuple[str, bytes]]],
    clients: int,
    seconds: float,
    at_measure_start: Callable[[], None] | None = None,
) -> Tally:
    """Prime, warm up, then measure, with ``clients`` connections spread over the ports of ``request_sets``
    (each port's own prepared requests); ``at_measure_start`` runs (in a thread) as the measured window opens."""
    tally = Tally()
    ports = list(request_sets)
    await asyncio.gather(*(prime(port, request_sets[port]) for port in ports))
    measure_from = time.perf_counter() + WARMUP_S
    stop_at = measure_from + seconds

    async def start_measuring() -> None:
        await asyncio.sleep(max(measure_from - time.perf_counter(), 0))
        if at_measure_start is not None:
            await asyncio.to_thread(at_measure_start)

    await asyncio.gather(
        start_measuring(),
        *(
            client(i, ports[i % len(ports)], request_sets[ports[i % len(ports)]], stop_at, measure_from, tally)
            for i in range(clients)
        ),
    )
    return tally


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]
