"""What a budget costs a page: the month-to-date spend (``batches.costs.spend.month_spend``), which the
budget bar of every page of a budgeted project computes (cached 30 s per project) and every budget check
before a create computes afresh, over N batches created this month (1 in 20 still running).

    .venv/bin/python -m bench.costs                  # 20,000 and 2,000 batches, on a temporary SQLite file
    DATABASE_URL=postgres://… .venv/bin/python -m bench.costs --rows 20000

Prints the median, min and max of 9 runs for each size. ``--file-mb 200`` also times the estimate a
blocking budget reads from an upload before it is sent (``oversight.estimate.estimate_jsonl``, 50,000 lines).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

MODELS = ("gpt-4o-mini", "gpt-4.1", "gpt-4o", "o4-mini")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="*", default=[20_000, 2_000])
    parser.add_argument("--file-mb", type=int, default=0, help="also time the estimate of a file of this size")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-costs-"))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp / 'db.sqlite3'}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.test_settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        for rows in args.rows:
            print(measure(rows))
        if args.file_mb:
            print(measure_file(tmp / "upload.jsonl", args.file_mb))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_file(path: Path, megabytes: int, lines: int = 50_000) -> str:
    import json

    from batches.oversight.estimate import estimate_jsonl

    text = "x " * (megabytes * 1024 * 1024 // lines // 2 - 80)
    with path.open("w") as out:
        for i in range(lines):
            body = {"model": "gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": text}]}
            out.write(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}) + "\n")
    size = path.stat().st_size
    started = time.perf_counter()
    with path.open("rb") as handle:
        estimate = estimate_jsonl(handle)
    seconds = time.perf_counter() - started
    return (f"estimate of a {size / 1e6:.0f} MB, {estimate.requests:,}-line upload: {seconds:.2f} s "
            f"({size / 1e6 / seconds:.0f} MB/s), {estimate.max_price.display} at its max_tokens")


def measure(n: int) -> str:
    from datetime import UTC, datetime

    from django.utils import timezone

    from batches.costs.spend import month_spend
    from batches.models import BatchRecord

    now = datetime.now(UTC)
    start = int(datetime(now.year, now.month, 1, tzinfo=UTC).timestamp())
    span = max(int(now.timestamp()) - start, 1)
    BatchRecord.objects.all().delete()
    rows = []
    for i in range(n):
        running = i % 20 == 0
        rows.append(BatchRecord(
            project="default", batch_id=f"batch_{i}", status="in_progress" if running else "completed", model=MODELS[i % 4],
            created_at=start + (i * 7919) % span, total_requests=100, completed_requests=40 if running else 100,
            input_tokens=None if running else 100_000 + i, cached_tokens=None if running else 1000,
            output_tokens=None if running else 5000, last_synced=timezone.now(),
        ))
    BatchRecord.objects.bulk_create(rows, batch_size=2000)
    times = []
    for _ in range(9):
        started = time.perf_counter()
        spend = month_spend("default")
        times.append((time.perf_counter() - started) * 1000)
    return (f"{n:,} batches this month ({spend.running:,} running): month_spend median {statistics.median(times):.1f} ms "
            f"(min {min(times):.1f}, max {max(times):.1f}); spend ${spend.spend:,.2f}")


if __name__ == "__main__":
    main()
