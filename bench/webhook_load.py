"""The webhook path on several machines' shape: gunicorn and two task workers on one PostgreSQL, fed signed
batch events; sustained events per second with nothing lost or duplicated, and the index lag at that rate.

    scripts/with-postgres .venv/bin/python -m bench.webhook_load [--events 400] [--json out.json]
    .venv/bin/python -m bench.webhook_load        # starts itself under scripts/with-postgres

Set-up (bench/harness.py): the emulator; the dashboard under gunicorn (2 workers x 4 threads, real
settings, ``OPENAI_WEBHOOK_SECRET`` set) and two ``manage.py run_worker --queue-name '*'`` processes, all
on the PostgreSQL in ``DATABASE_URL`` and, when ``redis-server`` is installed, one Redis for Django's
cache (``REDIS_URL``), as several instances are deployed; ``--events`` batches made in the emulator (not yet in the index).

1. Burst: one signed ``batch.cancelled`` event per batch, each delivered twice (a provider's retry), sent by
   8 concurrent senders as fast as the dashboard answers. Figures: deliveries accepted per second, and the
   sustained rate: events per second from the first delivery until the index holds every batch (the
   refresh tasks done by the two workers).
2. The same again on fresh batches at half the sustained rate (one event every 1/rate s): the index lag,
   from an event's first delivery to its row's ``last_synced``, p50 and p99.

Checks: every event's batch is in the index (none lost), and exactly one refresh task ran per event, all
successful (the duplicate deliveries were recognised, none refreshed twice).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import ROOT, Stack, free_port, python_executable, stop_process, wait_for_port  # noqa: E402
from bench.measure import Upstream  # noqa: E402

SECRET = "whsec_" + base64.b64encode(b"bench-webhook-secret-0123456789ab").decode()
SENDERS = 8


class PostgresStack(Stack):
    """The stack on the PostgreSQL of DATABASE_URL and, as several instances are deployed, a Redis for
    Django's cache (shared by every web process: a delivery's retry may reach another one)."""

    redis_url = ""

    def django_env(self, **overrides: str) -> dict[str, str]:
        extra = {"REDIS_URL": self.redis_url} if self.redis_url else {}
        env = super().django_env(DATABASE_URL=os.environ["DATABASE_URL"], OPENAI_WEBHOOK_SECRET=SECRET, **overrides)
        return {**env, **extra}


def start_redis() -> tuple[subprocess.Popen | None, str]:
    """A throwaway redis-server on loopback (no persistence), or (None, "") without one installed."""
    binary = shutil.which("redis-server")
    if binary is None:
        print("  (no redis-server: each web process has its own cache, as one machine without Redis would)")
        return None, ""
    port = free_port()
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def signed(batch_id: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    from standardwebhooks import Webhook

    body = json.dumps({"id": event_id, "object": "event", "type": "batch.cancelled",
                       "created_at": int(time.time()), "data": {"id": batch_id}})
    now = datetime.now(tz=UTC)
    signature = Webhook(SECRET).sign(event_id, now, body)
    headers = {"webhook-id": event_id, "webhook-timestamp": str(int(now.timestamp())),
               "webhook-signature": signature, "content-type": "application/json"}
    return body.encode(), headers


def deliver(client: httpx.Client, batch_id: str, event_id: str) -> int:
    body, headers = signed(batch_id, event_id)
    return client.post("/webhooks/openai/default/", content=body, headers=headers).status_code


def indexed(batch_ids: list[str]) -> dict[str, datetime]:
    from batches.models import BatchRecord

    rows = BatchRecord.objects.filter(project="default", batch_id__in=batch_ids).values_list("batch_id", "last_synced")
    return dict(rows)


def wait_indexed(batch_ids: list[str], timeout: float) -> tuple[dict[str, datetime], float]:
    deadline = time.monotonic() + timeout
    while True:
        rows = indexed(batch_ids)
        if len(rows) == len(batch_ids) or time.monotonic() > deadline:
            return rows, time.monotonic()
        time.sleep(0.05)


def task_times(batch_ids: list[str]) -> dict:
    """Median seconds a refresh task waited in the queue and ran (django-tasks-db's own timestamps)."""
    from django_tasks_db.models import DBTaskResult

    wanted = set(batch_ids)
    runs = [r for r in DBTaskResult.objects.filter(task_path="batches.index.refresh.refresh_batch", finished_at__isnull=False)
            if r.args_kwargs.get("args", [None, None])[1] in wanted]
    if not runs:
        return {}
    return {"queued_s_median": round(statistics.median((r.started_at - r.enqueued_at).total_seconds() for r in runs), 3),
            "ran_s_median": round(statistics.median((r.finished_at - r.started_at).total_seconds() for r in runs), 3)}


def refresh_tasks(batch_ids: list[str], timeout: float = 60) -> tuple[int, int]:
    """(refresh tasks for these batches, how many of them succeeded), once none is queued or running (a
    task's row is written before its result is recorded)."""
    from django_tasks_db.models import DBTaskResult

    wanted = set(batch_ids)
    deadline = time.monotonic() + timeout
    while True:
        runs = [r for r in DBTaskResult.objects.filter(task_path="batches.index.refresh.refresh_batch")
                if r.args_kwargs.get("args", [None, None])[1] in wanted]
        if all(r.status in ("SUCCESSFUL", "FAILED") for r in runs) or time.monotonic() > deadline:
            return len(runs), sum(1 for r in runs if r.status == "SUCCESSFUL")
        time.sleep(0.1)


def burst(client_url: str, batch_ids: list[str]) -> dict:
    sent_at: dict[str, float] = {}
    codes: list[int] = []
    lock = threading.Lock()

    def one(batch_id: str) -> None:
        event_id = f"evt_{uuid.uuid4().hex}"
        with httpx.Client(base_url=client_url, timeout=30) as client:
            with lock:
                sent_at[batch_id] = time.time()
            first = deliver(client, batch_id, event_id)
            second = deliver(client, batch_id, event_id)  # the provider's retry of the same event
        with lock:
            codes.extend((first, second))

    started = time.monotonic()
    with ThreadPoolExecutor(SENDERS) as pool:
        list(pool.map(one, batch_ids))
    accepted_seconds = time.monotonic() - started
    rows, done = wait_indexed(batch_ids, timeout=300)
    return {"sent_at": sent_at, "rows": rows, "codes": codes, "accept_seconds": accepted_seconds,
            "index_seconds": done - started}


def paced(client_url: str, batch_ids: list[str], rate: float) -> dict:
    sent_at: dict[str, float] = {}
    codes: list[int] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.1

    def one(pair: tuple[int, str]) -> None:
        i, batch_id = pair
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        event_id = f"evt_{uuid.uuid4().hex}"
        with httpx.Client(base_url=client_url, timeout=30) as client:
            with lock:
                sent_at[batch_id] = time.time()
            first = deliver(client, batch_id, event_id)
            second = deliver(client, batch_id, event_id)
        with lock:
            codes.extend((first, second))

    with ThreadPoolExecutor(SENDERS * 4) as pool:
        list(pool.map(one, enumerate(batch_ids)))
    rows, _ = wait_indexed(batch_ids, timeout=300)
    return {"sent_at": sent_at, "rows": rows, "codes": codes}


def lags_ms(result: dict) -> list[float]:
    return [1000 * (result["rows"][b].timestamp() - t) for b, t in result["sent_at"].items() if b in result["rows"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400)
    parser.add_argument("--paced-seconds", type=float, default=10.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        command = [str(ROOT / "scripts" / "with-postgres"), python_executable(), "-m", "bench.webhook_load", *(argv or sys.argv[1:])]
        return subprocess.run(command, cwd=ROOT).returncode

    redis, redis_url = start_redis()
    with PostgresStack(workers=2, threads=4) as stack:
        stack.redis_url = redis_url
        os.environ.update(stack.django_env())
        import django

        django.setup()
        workers = [
            subprocess.Popen([python_executable(), "manage.py", "run_worker", "--queue-name", "*", "--interval", "0.05",
                              "--no-reload", "--worker-id", f"bench-{n}"], cwd=ROOT, env=stack.django_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for n in (1, 2)
        ]
        stack.started_pids.extend(w.pid for w in workers)
        try:
            stack.start_dashboard()
            upstream = Upstream(stack)
            first = upstream.create_batches(args.events)
            load = os.getloadavg()[0]
            b = burst(stack.dashboard_url, first)
            sustained = len(b["rows"]) / b["index_seconds"]
            rate = max(sustained / 2, 1.0)
            second = upstream.create_batches(max(int(rate * args.paced_seconds), 1))
            upstream.close()
            p = paced(stack.dashboard_url, second, rate)
            every = first + second
            tasks, successful = refresh_tasks(every)
            timings = {"burst": task_times(first), "paced": task_times(second)}
            lost = len(every) - len(b["rows"]) - len(p["rows"])
        finally:
            for worker in workers:
                stop_process(worker)
            if redis is not None:
                stop_process(redis)
    lag = sorted(lags_ms(p))
    bad_codes = sum(1 for code in b["codes"] + p["codes"] if code != 200)
    figures = [
        {"name": f"Webhooks, 2 task workers on PostgreSQL: deliveries accepted (load {load:.2f})", "unit": "req/s",
         "value": round(len(b["codes"]) / b["accept_seconds"], 1), "target": "", "ok": None},
        {"name": "Webhooks, 2 task workers on PostgreSQL: sustained events per second (sent until indexed)",
         "unit": "events/s", "value": round(sustained, 1), "target": "", "ok": None},
        {"name": f"Webhooks: index lag at {rate:.0f} events/s, p50", "unit": "ms",
         "value": round(statistics.median(lag), 1) if lag else None, "target": "", "ok": None},
        {"name": f"Webhooks: index lag at {rate:.0f} events/s, p99", "unit": "ms",
         "value": round(lag[min(int(0.99 * (len(lag) - 1)), len(lag) - 1)], 1) if lag else None, "target": "", "ok": None},
        {"name": "Webhooks: events lost (batch never indexed)", "unit": "events", "value": lost, "target": "0",
         "ok": lost == 0},
        {"name": "Webhooks: refresh tasks beyond one per event (duplicates), or failed", "unit": "tasks",
         "value": (tasks - len(every)) + (tasks - successful), "target": "0",
         "ok": tasks == len(every) == successful and bad_codes == 0},
    ]
    for figure in figures:
        verdict = "" if figure["ok"] is None else ("met" if figure["ok"] else "MISSED")
        print(f"  {figure['name']}: {figure['value']} {figure['unit']} {verdict}")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "events": len(every), "tasks": tasks,
                                         "successful": successful, "non_200": bad_codes, "load_average": load,
                                         "refresh_task_seconds": timings}, indent=2))
    print(f"  refresh tasks (median): {timings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
