"""CPU per view of the dashboard's pages against the floor's, in-process: what a CPU-bound server's
saturation throughput follows, measured in a way a loaded machine disturbs less than wall time.

    .venv/bin/python -m bench.cpu_per_view [--rows 20000] [--views 50] [--rounds 5]

The same set-up as bench/saturation.py (the emulator, ``--rows`` batches in the index, one real batch of
the emulator, the read cache at its default), then Django's test client runs the filtered list and the
batch page of the dashboard and of the floor (``bench/floor/urls.py``, same settings and middleware) in
interleaved rounds of ``--views`` views each; CPU seconds (``time.process_time``) per view, the median of
the rounds. The floor's CPU over the dashboard's is the share of the floor's throughput a CPU-bound
server reaches (the 60 % target of bench/saturation.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import Stack  # noqa: E402
from bench.measure import Upstream  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--views", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with Stack() as stack:
        upstream = Upstream(stack)
        batch_id = upstream.create_batches(1)[0]
        upstream.close()
        os.environ.update(stack.django_env())
        import django

        django.setup()
        from django.conf import settings
        from django.test import Client
        from django.test.utils import override_settings

        from bench.saturation import fill

        fill(args.rows, batch_id, stack.emulator_url, "sk-bench")
        # The floor's templates beside the dashboard's, before the template engine is first built.
        settings.TEMPLATES[0]["DIRS"] = [*settings.TEMPLATES[0]["DIRS"], Path(__file__).resolve().parent / "floor" / "templates"]
        client = Client(HTTP_HOST="127.0.0.1")
        pages = {
            "list": ("/projects/default/batches/?status=failed", "/floor/batches/?status=failed"),
            "batch": (f"/projects/default/batches/{batch_id}/", f"/floor/batches/{batch_id}/"),
        }

        def cpu_ms(path: str, floor: bool) -> float:
            def run() -> None:
                response = client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            if floor:
                with override_settings(ROOT_URLCONF="bench.floor.urls"):
                    return _timed(run, args.views)
            return _timed(run, args.views)

        results = {"rows": args.rows, "views": args.views, "rounds": args.rounds, "load_average": round(os.getloadavg()[0], 2)}
        for page, (app_path, floor_path) in pages.items():
            cpu_ms(app_path, False), cpu_ms(floor_path, True)  # warm: templates, caches
            app, floor = [], []
            for _ in range(args.rounds):
                app.append(cpu_ms(app_path, False))
                floor.append(cpu_ms(floor_path, True))
            results[page] = {
                "app_cpu_ms": round(statistics.median(app), 2), "floor_cpu_ms": round(statistics.median(floor), 2),
                "share": round(100 * statistics.median(f / a for a, f in zip(app, floor)), 1),
            }
            r = results[page]
            print(f"{page:5s}: dashboard {r['app_cpu_ms']} ms CPU per view, floor {r['floor_cpu_ms']} ms: "
                  f"{r['share']} % of the floor's throughput for a CPU-bound server (target 60 %); "
                  f"load {results['load_average']}", flush=True)
    figures = [
        {"name": f"CPU per view, {page} page: share of the floor's throughput for a CPU-bound server "
                 f"(dashboard {results[page]['app_cpu_ms']} ms, floor {results[page]['floor_cpu_ms']} ms; load {results['load_average']})",
         "value": results[page]["share"], "unit": "%", "target": ">= 60 %", "ok": results[page]["share"] >= 60}
        for page in pages
    ]
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, **results}, indent=2))
    return 0


def _timed(run, views: int) -> float:
    started = time.process_time()
    for _ in range(views):
        run()
    return (time.process_time() - started) * 1000 / views


if __name__ == "__main__":
    sys.exit(main())
