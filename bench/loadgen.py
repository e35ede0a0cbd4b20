"""A small HTTP/1.1 load generator on asyncio: keep-alive connections, raw sockets, no HTTP library, so the
generator spends little CPU per request (its share is measured and reported, as the server must not be
starved by the client on a 2-core machine).

* :func:`closed_loop`: ``connections`` clients, each sending its next request as soon as the answer
  arrives (no think time): the server's saturation throughput, and the latencies at it.
* :func:`open_loop`: requests sent at a fixed rate whatever the answers do (up to ``connections`` in
  flight); each latency counts from the moment the request was due, so a server that falls behind shows
  it (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import os
import resource
from dataclasses import dataclass, field


@dataclass
class Run:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    generator_cpu_seconds: float = 0.0

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return 1000 * ordered[min(int(round(q / 100 * (len(ordered) - 1))), len(ordered) - 1)]

    def summary(self) -> dict:
        return {
            "requests": len(self.latencies), "errors": self.errors, "seconds": round(self.seconds, 2),
            "requests_per_second": round(self.requests_per_second, 1),
            "p50_ms": round(self.percentile_ms(50), 1), "p99_ms": round(self.percentile_ms(99), 1),
            "generator_cpu_seconds": round(self.generator_cpu_seconds, 3),
        }


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Connection:
    def __init__(self, host: str, port: int, path: str) -> None:
        self.host, self.port = host, port
        self.request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: text/html\r\n\r\n".encode()
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def get(self) -> int:
        """One request; returns the status code. Reconnects when the server closed the connection."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(self.request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        close = b"connection: close" in lower
        if b"transfer-encoding: chunked" in lower:
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            start = lower.find(b"content-length:")
            length = int(lower[start + 15: lower.index(b"\r\n", start)]) if start >= 0 else 0
            await self.reader.readexactly(length)
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed(host: str, port: int, path: str, connections: int, warmup: float, seconds: float) -> Run:
    loop = asyncio.get_running_loop()
    start = loop.time()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    run = Run(seconds=seconds)
    cpu_at: list[float] = []

    async def client() -> None:
        conn = Connection(host, port, path)
        try:
            while (now := loop.time()) < stop_at:
                if now >= measure_from and not cpu_at:
                    cpu_at.append(_cpu())
                try:
                    status = await conn.get()
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    conn.close()
                    status = 0
                done = loop.time()
                if now >= measure_from and done <= stop_at:
                    if status == 200:
                        run.latencies.append(done - now)
                    else:
                        run.errors += 1
        finally:
            conn.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    run.generator_cpu_seconds = _cpu() - (cpu_at[0] if cpu_at else _cpu())
    return run


async def _open(host: str, port: int, path: str, rate: float, connections: int, seconds: float) -> Run:
    loop = asyncio.get_running_loop()
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(Connection(host, port, path))
    run = Run(seconds=seconds)
    cpu_start = _cpu()
    start = loop.time() + 0.05
    total = int(rate * seconds)
    pending = []

    async def one(due: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.get()
        except (OSError, asyncio.IncompleteReadError, ValueError):
            conn.close()
            status = 0
        idle.put_nowait(conn)
        if status == 200:
            run.latencies.append(loop.time() - due)
        else:
            run.errors += 1

    for i in range(total):
        due = start + i / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.ensure_future(one(due)))
    await asyncio.gather(*pending)
    while not idle.empty():
        idle.get_nowait().close()
    run.generator_cpu_seconds = _cpu() - cpu_start
    return run


def closed_loop(url_host: str, port: int, path: str, *, connections: int, seconds: float, warmup: float = 2.0) -> Run:
    return asyncio.run(_closed(url_host, port, path, connections, warmup, seconds))


def open_loop(url_host: str, port: int, path: str, *, rate: float, connections: int, seconds: float) -> Run:
    return asyncio.run(_open(url_host, port, path, rate, connections, seconds))


def cpu_seconds_of(pids: list[int]) -> float:
    """User + system CPU seconds of processes (their own, not their children's), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / ticks
