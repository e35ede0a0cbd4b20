"""Load against its floor: the filtered list and a batch page driven to saturation, next to the same load
on a minimal Django view on the same database rendering the same rows (the floor on this machine).

    .venv/bin/python -m bench.saturation [--rows 20000] [--connections 50] [--seconds 10] [--json out.json]
                                         [--pin] [--only list,batch]

It starts its own stack (bench/harness.py: the emulator, gunicorn with the real settings, 2 workers x 4
threads, the read cache at its default) and a second gunicorn of the same shape with
``bench.floor.settings`` (the same settings, database and middleware; ``bench/floor/urls.py``: one query
and a plain template loop). The index gets ``--rows`` batches (bench/find.py's fill) and one real batch of
the emulator, whose page is the "batch page".

For each page and each server: ``--connections`` clients with no think time (closed loop) for
``--seconds`` after a 2 s warm-up: requests/s at saturation with p50 and p99; then requests sent at half
that rate (open loop, latency counted from when each request was due): p50 and p99 at half load. Targets
(issue 22): the dashboard reaches at least 60 % of the floor's requests/s, and its p99 at half load is at
most 250 ms.

The load generator (bench/loadgen.py: asyncio, raw keep-alive sockets) runs in this process; its CPU
seconds are reported against the servers' (gunicorn workers and emulator, from /proc), so a run where
the client took the cores from the server shows it. ``--pin`` puts the servers on CPU 0 and the generator
and emulator on CPU 1 (``sched_setaffinity``; on a shared machine other work still runs on both).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import GUNICORN, ROOT, Stack, child_pids, free_port, python_executable, stop_process, wait_for_port  # noqa: E402
from bench.loadgen import closed_loop, cpu_seconds_of, open_loop  # noqa: E402
from bench.measure import Upstream  # noqa: E402

SHARE_TARGET = 60.0  # % of the floor's saturation throughput
P99_HALF_TARGET_MS = 250.0


def fill(rows: int, batch_id: str, emulator_url: str, api_key: str) -> None:
    """In a child process with the stack's environment: the index rows, and the emulator's batch."""
    import django

    django.setup()
    from bench.find import fill as fill_rows
    from batches.index.store import store_counts
    from batches.index.store import upsert_batches
    from batches.upstream import Batch

    fill_rows(rows)
    answer = httpx.get(f"{emulator_url}/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {api_key}"})
    upsert_batches("default", [Batch.from_api(answer.raise_for_status().json())])
    store_counts("default")


def start_floor(stack: Stack) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = stack.django_env(DJANGO_SETTINGS_MODULE="bench.floor.settings")
    command = [str(GUNICORN), "dashboard.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(stack.workers), "--threads", str(stack.threads)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    stack.started_pids.append(proc.pid)
    wait_for_port(port, proc)
    deadline = time.monotonic() + 30
    while len(child_pids(proc.pid)) < stack.workers and time.monotonic() < deadline:
        time.sleep(0.05)
    stack.started_pids.extend(child_pids(proc.pid))
    return proc, port


def measure(port: int, path: str, server_pids: list[int], *, connections: int, seconds: float) -> dict:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        answer = client.get(path)
        if answer.status_code != 200:
            raise RuntimeError(f"{path} answered {answer.status_code}")
    cpu_before = cpu_seconds_of(server_pids)
    load_before = os.getloadavg()[0]
    saturated = closed_loop("127.0.0.1", port, path, connections=connections, seconds=seconds)
    server_cpu = cpu_seconds_of(server_pids) - cpu_before
    half_rate = max(saturated.requests_per_second / 2, 1.0)
    half = open_loop("127.0.0.1", port, path, rate=half_rate, connections=connections, seconds=seconds)
    generator = saturated.generator_cpu_seconds
    return {
        "path": path,
        "saturation": saturated.summary(),
        "half_load": {**half.summary(), "rate": round(half_rate, 1)},
        "server_cpu_seconds": round(server_cpu, 2),
        "generator_cpu_share": round(100 * generator / (generator + server_cpu), 1) if server_cpu else None,
        "load_average": round(load_before, 2),
    }


def figures_of(results: dict) -> list[dict]:
    out = []
    for page, label in (("list", "filtered list (status=failed, 20 rows)"), ("batch", "batch page")):
        if page not in results:
            continue
        app, floor = results[page]["app"], results[page]["floor"]
        share = 100 * app["saturation"]["requests_per_second"] / floor["saturation"]["requests_per_second"]
        load = f"load {app['load_average']}"
        out += [
            {"name": f"Load, {label}: dashboard at saturation ({load})", "unit": "req/s",
             "value": app["saturation"]["requests_per_second"], "target": "", "ok": None,
             "detail": f"p50 {app['saturation']['p50_ms']} ms, p99 {app['saturation']['p99_ms']} ms"},
            {"name": f"Load, {label}: floor at saturation (minimal Django view, same rows)", "unit": "req/s",
             "value": floor["saturation"]["requests_per_second"], "target": "", "ok": None,
             "detail": f"p50 {floor['saturation']['p50_ms']} ms, p99 {floor['saturation']['p99_ms']} ms"},
            {"name": f"Load, {label}: dashboard share of the floor's throughput", "unit": "%",
             "value": round(share, 1), "target": f">= {SHARE_TARGET:g} %", "ok": share >= SHARE_TARGET},
            {"name": f"Load, {label}: dashboard p99 at half load ({app['half_load']['rate']} req/s)", "unit": "ms",
             "value": app["half_load"]["p99_ms"], "target": f"<= {P99_HALF_TARGET_MS:g} ms",
             "ok": app["half_load"]["p99_ms"] <= P99_HALF_TARGET_MS,
             "detail": f"p50 {app['half_load']['p50_ms']} ms; floor at its half load: p50 {floor['half_load']['p50_ms']} ms, "
                       f"p99 {floor['half_load']['p99_ms']} ms"},
            {"name": f"Load, {label}: load generator's share of the CPU used", "unit": "%",
             "value": app["generator_cpu_share"], "target": "", "ok": None},
        ]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000, help="batches in the index (default 20,000)")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--only", default="list,batch")
    parser.add_argument("--pin", action="store_true", help="servers on CPU 0, generator and emulator on CPU 1")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--fill", nargs=4, metavar=("ROWS", "BATCH", "EMULATOR", "KEY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.fill:
        fill(int(args.fill[0]), args.fill[1], args.fill[2], args.fill[3])
        return 0
    pages = {p.strip() for p in args.only.split(",") if p.strip()}
    if args.pin:
        os.sched_setaffinity(0, {1})
    results: dict = {"rows": args.rows, "connections": args.connections, "seconds": args.seconds, "pinned": args.pin}
    with Stack(workers=2, threads=4) as stack:
        upstream = Upstream(stack)
        batch_id = upstream.create_batches(1)[0]
        upstream.close()
        env = stack.django_env()
        subprocess.run([python_executable(), "-m", "bench.saturation", "--fill", str(args.rows), batch_id,
                        stack.emulator_url, "sk-bench"], cwd=ROOT, env=env, check=True)
        stack.start_dashboard()
        floor_proc, floor_port = start_floor(stack)
        if args.pin:
            for pid in [stack.gunicorn_proc.pid, *stack.worker_pids(), floor_proc.pid, *child_pids(floor_proc.pid)]:
                os.sched_setaffinity(pid, {0})
            os.sched_setaffinity(stack.emulator_proc.pid, {1})
        try:
            app_pids = stack.worker_pids() + [stack.emulator_proc.pid]
            floor_pids = child_pids(floor_proc.pid)
            targets = {
                "list": ("/projects/default/batches/?status=failed", "/floor/batches/?status=failed"),
                "batch": (f"/projects/default/batches/{batch_id}/", f"/floor/batches/{batch_id}/"),
            }
            for page in ("list", "batch"):
                if page not in pages:
                    continue
                app_path, floor_path = targets[page]
                results[page] = {
                    "app": measure(stack.dashboard_port, app_path, app_pids, connections=args.connections, seconds=args.seconds),
                    "floor": measure(floor_port, floor_path, floor_pids, connections=args.connections, seconds=args.seconds),
                }
                for who in ("app", "floor"):
                    r = results[page][who]
                    print(f"{page:5s} {who:5s}: {r['saturation']['requests_per_second']:7.1f} req/s at saturation "
                          f"(p50 {r['saturation']['p50_ms']} ms, p99 {r['saturation']['p99_ms']} ms, "
                          f"{r['saturation']['errors']} errors); half load {r['half_load']['rate']} req/s: "
                          f"p50 {r['half_load']['p50_ms']} ms, p99 {r['half_load']['p99_ms']} ms; "
                          f"generator {r['generator_cpu_share']} % of the CPU used; load {r['load_average']}", flush=True)
        finally:
            stop_process(floor_proc)
    figures = figures_of(results)
    for figure in figures:
        verdict = "" if figure["ok"] is None else ("met" if figure["ok"] else "MISSED")
        print(f"  {figure['name']}: {figure['value']} {figure['unit']} {figure['target']} {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, **results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
