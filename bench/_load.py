"""A small, cheap load generator: HTTP/1.1 keep-alive over raw asyncio streams.

httpx costs a few milliseconds of CPU per request, which on a 2-core machine would measure
the client rather than the server; this one costs a few tens of microseconds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

Request = Callable[[int], tuple[str, bytes, dict[str, str]]]


@dataclass
class Result:
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms) if self.latencies_ms else float("nan")

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        assert self.reader is not None
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("server closed the connection")
        status = int(status_line.split()[1])
        length = 0
        close = False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _one(conn: Connection, make: Request, n: int, result: Result) -> None:
    path, body, headers = make(n)
    start = time.perf_counter()
    result.sent += 1
    try:
        status = await conn.post(path, body, headers)
    except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
        conn.close()
        result.error(type(exc).__name__)
        return
    result.latencies_ms.append((time.perf_counter() - start) * 1000)
    if status in (200, 202):
        result.ok += 1
    else:
        result.error(f"HTTP {status}")


async def closed_loop(base_url: str, make: Request, *, concurrency: int, seconds: float, start_at: int = 0) -> Result:
    """As fast as it goes with `concurrency` requests in flight: sustained throughput."""
    url = urlsplit(base_url)
    result = Result(0, 0, 0.0, [])
    counter = iter(range(start_at, start_at + 10_000_000))
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        conn = Connection(url.hostname or "127.0.0.1", url.port or 80)
        while time.perf_counter() < deadline:
            await _one(conn, make, next(counter), result)
        conn.close()

    began = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    result.seconds = time.perf_counter() - began
    return result


async def open_loop(base_url: str, make: Request, *, rate: float, seconds: float, start_at: int = 0) -> Result:
    """Requests started at a fixed rate whatever the answers do: latency under that load."""
    url = urlsplit(base_url)
    result = Result(0, 0, 0.0, [])
    idle: list[Connection] = []

    async def send(n: int) -> None:
        conn = idle.pop() if idle else Connection(url.hostname or "127.0.0.1", url.port or 80)
        await _one(conn, make, n, result)
        idle.append(conn)

    began = time.perf_counter()
    tasks = []
    for i in range(int(rate * seconds)):
        delay = began + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(start_at + i)))
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - began
    for conn in idle:
        conn.close()
    return result
