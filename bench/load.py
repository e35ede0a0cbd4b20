"""Load: 50 simulated operators browsing, paging and polling for 60 seconds.

    .venv/bin/python -m bench.load [--operators 50] [--seconds 60] [--workers 2] [--threads 16]
                                   [--cache-seconds 2] [--poll-seconds 2] [--json out.json]

Starts the emulator and the dashboard under gunicorn (real settings, locmem cache) on free loopback ports
(bench/harness.py), runs the operators as threads with one keep-alive ``httpx.Client`` each, then stops
what it started by process id. Each operator loops: open the list, page forward once or twice, open a
batch, poll its status region with htmx a few times, refresh the list with htmx; it thinks 0.2–1 s
between clicks and waits ``--poll-seconds`` between polls, as an open browser tab would.

Prints total requests, errors (must be 0: any answer other than 200, or a failed connection), p50/p99
latency, the dashboard's and the upstream's requests per second (the latter from the emulator's
``/_emulator/stats``), and every gunicorn worker's RSS at the start and end of the run. Exit status 1 if
there was any error.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from .harness import Stack, proc_memory_kb

ROW_LINK = re.compile(r'href="/projects/default/batches/(batch_[A-Za-z0-9_.:\-]+)/"')
NEXT_LINK = re.compile(r'href="(/batches/\?after=[^"]+)"[^>]*>\s*Next')
HX = {"HX-Request": "true"}


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    kinds: Counter = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.latencies.append(seconds)
            self.kinds[kind] += 1
            if error:
                self.errors[f"{kind}: {error}"] += 1


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    index = min(int(round(q / 100 * (len(ordered) - 1))), len(ordered) - 1)
    return ordered[index]


class Operator(threading.Thread):
    def __init__(self, n: int, base_url: str, stop_at: float, tally: Tally, poll_seconds: float) -> None:
        super().__init__(name=f"operator-{n}", daemon=True)
        self.rng = random.Random(n)
        # gunicorn closes idle keep-alive connections after 2 s (its default); a client reusing one at that
        # instant gets a ReadError, which browsers silently retry and httpx does not. Like a browser, never
        # reuse a connection idle for a second or more.
        self.http = httpx.Client(
            base_url=base_url, timeout=30.0, follow_redirects=False, limits=httpx.Limits(keepalive_expiry=1.0)
        )
        self.stop_at = stop_at
        self.tally = tally
        self.poll_seconds = poll_seconds

    def get(self, kind: str, url: str, htmx: bool = False) -> str:
        started = time.monotonic()
        error = None
        text = ""
        try:
            response = self.http.get(url, headers=HX if htmx else None)
            text = response.text
            if response.status_code != 200:
                error = f"HTTP {response.status_code}"
        except httpx.HTTPError as err:
            error = type(err).__name__
        self.tally.record(kind, time.monotonic() - started, error)
        return text

    def pause(self, seconds: float) -> bool:
        """Sleep unless the run ends first; False when it is over."""
        remaining = self.stop_at - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(seconds, remaining))
        return time.monotonic() < self.stop_at

    def run(self) -> None:
        try:
            while time.monotonic() < self.stop_at:
                page = self.get("list", self.rng.choice(["/projects/default/batches/?limit=10", "/projects/default/batches/"]))
                ids = ROW_LINK.findall(page)
                for _ in range(self.rng.randint(0, 2)):
                    if not self.pause(self.rng.uniform(0.2, 1.0)):
                        return
                    found = NEXT_LINK.search(page)
                    if not found:
                        break
                    page = self.get("list next page", found.group(1).replace("&amp;", "&"))
                    ids += ROW_LINK.findall(page)
                if not ids or not self.pause(self.rng.uniform(0.2, 1.0)):
                    continue
                batch_id = self.rng.choice(ids)
                self.get("detail", f"/projects/default/batches/{batch_id}/")
                for _ in range(self.rng.randint(2, 5)):
                    if not self.pause(self.poll_seconds):
                        return
                    self.get("detail poll (htmx)", f"/projects/default/batches/{batch_id}/", htmx=True)
                if not self.pause(self.rng.uniform(0.2, 1.0)):
                    return
                self.get("list refresh (htmx)", "/projects/default/batches/", htmx=True)
        finally:
            self.http.close()


def rss_mb(pids: list[int]) -> dict[int, float]:
    return {pid: round(proc_memory_kb(pid).get("VmRSS", 0) / 1024, 1) for pid in pids}


def run(args: argparse.Namespace) -> dict:
    with Stack(workers=args.workers, threads=args.threads) as stack:
        stack.start_dashboard(
            DASHBOARD_CACHE_SECONDS=str(args.cache_seconds),
            DASHBOARD_POLL_SECONDS=str(args.poll_seconds),
        )
        stats_client = httpx.Client(base_url=stack.emulator_url, timeout=10.0)
        try:
            # Warm every worker (imports, templates, the pooled upstream connection) before measuring.
            with httpx.Client(base_url=stack.dashboard_url, timeout=30.0) as warm:
                for _ in range(args.workers * 8):
                    warm.get("/projects/default/batches/").raise_for_status()
            workers = stack.worker_pids()
            rss_start = rss_mb(workers)
            stats_client.post("/_emulator/reset-counts").raise_for_status()

            tally = Tally()
            started = time.monotonic()
            stop_at = started + args.seconds
            operators = [
                Operator(n, stack.dashboard_url, stop_at, tally, args.poll_seconds) for n in range(args.operators)
            ]
            for operator in operators:
                operator.start()
                time.sleep(0.02)  # operators arrive over the first second, not in one burst
            for operator in operators:
                operator.join(args.seconds + 60)
            elapsed = time.monotonic() - started

            upstream = stats_client.get("/_emulator/stats").raise_for_status().json()
            rss_end = rss_mb(workers)
        finally:
            stats_client.close()

    total = len(tally.latencies)
    return {
        "operators": args.operators,
        "seconds": round(elapsed, 1),
        "gunicorn": f"{args.workers} workers x {args.threads} threads",
        "cache_seconds": args.cache_seconds,
        "poll_seconds": args.poll_seconds,
        "requests": total,
        "requests_by_kind": dict(tally.kinds),
        "errors": sum(tally.errors.values()),
        "error_kinds": dict(tally.errors),
        "dashboard_rps": round(total / elapsed, 1),
        "p50_ms": round(percentile(tally.latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(tally.latencies, 99) * 1000, 1),
        "max_ms": round(max(tally.latencies, default=0) * 1000, 1),
        "upstream_requests": upstream["total"],
        "upstream_rps": round(upstream["total"] / elapsed, 2),
        "upstream_by_route": upstream["counts"],
        "upstream_connections": upstream["connections"],
        "worker_rss_mb_start": rss_start,
        "worker_rss_mb_end": rss_end,
    }


def report(figures: dict) -> str:
    lines = [
        f"load: {figures['operators']} operators for {figures['seconds']} s against gunicorn "
        f"({figures['gunicorn']}), cache {figures['cache_seconds']} s, polling every {figures['poll_seconds']} s",
        f"  total requests          {figures['requests']}  ({figures['dashboard_rps']} per second)",
        f"  errors                  {figures['errors']}" + (f"  {figures['error_kinds']}" if figures["errors"] else ""),
        f"  latency p50             {figures['p50_ms']} ms",
        f"  latency p99             {figures['p99_ms']} ms   (max {figures['max_ms']} ms)",
        f"  upstream requests       {figures['upstream_requests']}  ({figures['upstream_rps']} per second, "
        f"over {figures['upstream_connections']} connections)",
        f"  upstream by route       {figures['upstream_by_route']}",
        f"  requests by kind        {figures['requests_by_kind']}",
        "  worker RSS start (MB)   " + ", ".join(f"pid {p}: {m}" for p, m in figures["worker_rss_mb_start"].items()),
        "  worker RSS end (MB)     " + ", ".join(f"pid {p}: {m}" for p, m in figures["worker_rss_mb_end"].items()),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--cache-seconds", type=float, default=2.0)
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    figures = run(args)
    print(report(figures))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(figures, out, indent=2)
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
