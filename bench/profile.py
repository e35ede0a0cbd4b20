"""Profile one page in-process with pyinstrument: ``.venv/bin/python -m bench.profile [--page URL]``.

The dashboard runs with the real settings (read cache off) against the emulator on loopback, through the
whole middleware stack (Django's test client), so the profile shows where a page view spends its time:
upstream wait, JSON parsing, template rendering, middleware.
"""

from __future__ import annotations

import argparse
import os
import time

from .harness import Stack
from .measure import Upstream, ensure_batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--page", default="/projects/default/batches/?limit=100",
                        help="the URL to profile; {batch} stands for a real batch of the emulator")
    parser.add_argument("--views", type=int, default=200)
    parser.add_argument("--html", metavar="PATH", help="write pyinstrument's HTML report here")
    parser.add_argument("--index-rows", type=int, default=0,
                        help="first fill the index with this many batches (bench/find.py's fill), for filtered pages")
    parser.add_argument("--cache-seconds", default="0", help="DASHBOARD_CACHE_SECONDS (default 0: every view does its work)")
    args = parser.parse_args(argv)

    from pyinstrument import Profiler

    with Stack() as stack:
        upstream = Upstream(stack)
        ensure_batches(upstream, 110)
        if "{batch}" in args.page:  # a batch page: one real batch of the emulator
            args.page = args.page.replace("{batch}", upstream.create_batches(1)[0])
        upstream.close()
        os.environ.update(stack.django_env(DASHBOARD_CACHE_SECONDS=args.cache_seconds))

        import django
        from django.test import Client

        django.setup()
        if args.index_rows:
            from bench.find import fill

            fill(args.index_rows)
        client = Client(HTTP_HOST="127.0.0.1")
        for _ in range(20):
            client.get(args.page)
        profiler = Profiler(interval=0.0005)
        t0 = time.perf_counter()
        with profiler:
            for _ in range(args.views):
                response = client.get(args.page)
                assert response.status_code == 200, response.status_code
        per_view = (time.perf_counter() - t0) / args.views * 1000
        print(f"{args.page}: {per_view:.2f} ms per view in-process (profiled), {len(response.content)} bytes")
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        if args.html:
            with open(args.html, "w") as fh:
                fh.write(profiler.output_html())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
