"""A frozen upstream (issue #23 item 3): while the Batch API answers nothing and 16 viewers keep opening
live pages, index pages and ``/healthz`` still answer within 1 s.

    .venv/bin/python -m bench.frozen                        # 16 live viewers, 20 s frozen
    .venv/bin/python -m bench.frozen --viewers 16 --seconds 20 --json out.json

It starts the emulator and the dashboard under gunicorn as ``scripts/run`` does (2 workers x 4 threads,
the real settings and their defaults), fills the index with one ``manage.py sync_batches --once``, then
freezes the emulator with its fault injection (every API request sleeps 60 s before answering). From
that moment ``--viewers`` threads open live pages without pause (the unfiltered list and batch pages,
each an upstream read), while one prober opens, in turn, ``/healthz``, a filtered list and ``/search/``
(both served from the index) and times each answer. The figure is the slowest probe over the whole
frozen period, the first seconds included (before any breaker has opened), against the 1 s target; the
slowest from 6 s on (every breaker open) is printed too.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import subprocess
import threading
import time

import httpx

from .harness import ROOT, Stack, python_executable

TARGET_SECONDS = 1.0
#: Seconds into the freeze after which every web process has seen its page reads time out (the default
#: page deadline is 5 s) and its breaker is open.
SETTLED_AFTER = 6.0
PROBES = ("/healthz", "/projects/default/batches/?status=completed", "/search/?status=in_progress")


def fill_index(stack: Stack) -> None:
    proc = subprocess.run([python_executable(), "manage.py", "sync_batches", "--once"], cwd=ROOT,
                          env=stack.django_env(), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"sync_batches --once failed:\n{proc.stderr[-2000:]}")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)]


def live_viewers(url: str, ids: list[str], viewers: int, seconds: float, out) -> None:
    """In a process of its own (so the viewers' own work does not slow the prober's clock): ``viewers``
    threads open live pages without pause for ``seconds``; puts [(status, seconds), ...] on ``out``."""
    stop = threading.Event()
    live: list[tuple[int, float]] = []

    def viewer(n: int) -> None:
        with httpx.Client(base_url=url, timeout=90) as client:
            i = n
            while not stop.is_set():
                path = "/projects/default/batches/" if i % 2 else f"/projects/default/batches/{ids[i % len(ids)]}/"
                started = time.monotonic()
                try:
                    status = client.get(path).status_code
                except httpx.HTTPError:
                    status = 0
                live.append((status, time.monotonic() - started))
                i += viewers

    threads = [threading.Thread(target=viewer, args=(n,), daemon=True) for n in range(viewers)]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    out.put(list(live))


def run(viewers: int, seconds: float, env: dict[str, str] | None = None) -> dict:
    with Stack(workers=2, threads=4) as stack:
        fill_index(stack)
        stack.start_dashboard(**(env or {}))
        page = httpx.get(f"{stack.upstream_base_url}/batches", params={"limit": 50},
                         headers={"Authorization": "Bearer sk-bench"}).json()
        ids = [batch["id"] for batch in page["data"]]
        # Warm, as a running dashboard is: every page, in every gunicorn worker (a new connection each time
        # lands on either), before the freeze; the measure is the freeze's effect, not a cold start.
        for _ in range(4 * stack.workers):
            for path in ("/projects/default/batches/", f"/projects/default/batches/{ids[0]}/", *PROBES):
                httpx.get(stack.dashboard_url + path, timeout=30).raise_for_status()
        httpx.post(f"{stack.emulator_url}/_emulator/faults", json={"delay": 60, "times": None}).raise_for_status()
        frozen_at = time.monotonic()
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        crowd = context.Process(target=live_viewers, args=(stack.dashboard_url, ids, viewers, seconds, results), daemon=True)
        crowd.start()
        probes: dict[str, list[float]] = {path: [] for path in PROBES}
        timeline: list[tuple[float, str, float]] = []  # (seconds into the freeze, path, took)
        failures: list[str] = []
        with httpx.Client(base_url=stack.dashboard_url, timeout=90) as client:
            i = 0
            while time.monotonic() - frozen_at < seconds:
                path = PROBES[i % len(PROBES)]
                started = time.monotonic()
                status = client.get(path).status_code
                took = time.monotonic() - started
                probes[path].append(took)
                timeline.append((round(started - frozen_at, 2), path, round(took, 3)))
                if status != 200:
                    failures.append(f"{path} -> {status}")
                i += 1
                time.sleep(0.1)
        live = results.get(timeout=120)
        crowd.join(30)
        httpx.delete(f"{stack.emulator_url}/_emulator/faults")
    every_probe = [t for values in probes.values() for t in values]
    statuses: dict[str, int] = {}
    for status, _ in live:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "viewers": viewers,
        "frozen_seconds": seconds,
        "probes": {path: {"n": len(v), "median_s": round(statistics.median(v), 3), "p95_s": round(percentile(v, 0.95), 3),
                          "max_s": round(max(v), 3)} for path, v in probes.items() if v},
        "slowest_probe_s": round(max(every_probe), 3),
        "probe_failures": failures,
        "slowest_probes": sorted(timeline, key=lambda item: -item[2])[:5],
        # From SETTLED_AFTER on the breakers are open (two page deadlines have passed): steady state.
        "slowest_probe_settled_s": max((took for at, _, took in timeline if at >= SETTLED_AFTER), default=None),
        "live_views": {"n": len(live), "statuses": statuses,
                       "median_s": round(statistics.median(t for _, t in live), 3) if live else None},
        "target_s": TARGET_SECONDS,
        "met": max(every_probe) <= TARGET_SECONDS and not failures,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.frozen", description=__doc__.splitlines()[0])
    parser.add_argument("--viewers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the dashboard (e.g. DASHBOARD_UPSTREAM_PAGE_SLOTS=1); repeatable")
    args = parser.parse_args(argv)
    result = run(args.viewers, args.seconds, dict(item.split("=", 1) for item in args.env))
    print(f"Frozen upstream, {result['viewers']} concurrent live viewers for {result['frozen_seconds']:g} s "
          f"(2 gunicorn workers x 4 threads):")
    for path, figures in result["probes"].items():
        print(f"  {path:45} n={figures['n']:3}  median {figures['median_s']:.3f} s  p95 {figures['p95_s']:.3f} s  max {figures['max_s']:.3f} s")
    live = result["live_views"]
    print(f"  live views answered: {live['n']} (status: {live['statuses']}), median {live['median_s']} s")
    if result["slowest_probe_settled_s"] is not None:
        print(f"  slowest index page or /healthz from {SETTLED_AFTER:g} s on (breakers open): {result['slowest_probe_settled_s']:.3f} s")
    print(f"  the five slowest probes (s into the freeze, page, s): {result['slowest_probes']}")
    verdict = "met" if result["met"] else "NOT met"
    print(f"  slowest index page or /healthz: {result['slowest_probe_s']:.3f} s (target <= {TARGET_SECONDS:g} s): {verdict}"
          + (f"; failures: {result['probe_failures'][:5]}" if result["probe_failures"] else ""))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
