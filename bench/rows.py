"""Rendering the 100 rows of a list page in-process: cold (every row rendered) and warm (each row
rendered once per content, as live polling sees them), against the +6 ms budget of the whole page.

    .venv/bin/python -m bench.rows [--rows 100] [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args(argv)

    db = os.path.join(tempfile.mkdtemp(prefix="bench-rows-"), "db.sqlite3")
    os.environ.update(DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG="1", DATABASE_URL=f"sqlite:///{db}")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from batches import rows
    from emulator import EmulatorServer
    from batches.upstream import Batch

    server = EmulatorServer(port=0, api_key="sk-bench", seed=True, seed_count=args.rows)
    batches = [Batch.from_api(b) for b in server.state.list_batches()[: args.rows]]
    ctx = rows.RowContext.build(project="default", can_operate=True, csrf_token="t" * 64)

    def timed(fn) -> list[float]:
        out = []
        for _ in range(args.runs):
            started = time.perf_counter()
            fn()
            out.append((time.perf_counter() - started) * 1000)
        return out

    def cold():
        rows.ROW_CACHE.clear()
        rows.render_rows(batches, ctx)

    cold_ms = timed(cold)
    rows.render_rows(batches, ctx)
    warm_ms = timed(lambda: rows.render_rows(batches, ctx))
    figures = {
        "rows": len(batches),
        "cold_median_ms": round(statistics.median(cold_ms), 2),
        "warm_median_ms": round(statistics.median(warm_ms), 2),
    }
    print(f"{len(batches)} rows: every row rendered {figures['cold_median_ms']} ms, "
          f"rows unchanged since the last view {figures['warm_median_ms']} ms (median of {args.runs})")
    return figures


if __name__ == "__main__":
    main()
