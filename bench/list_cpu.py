"""CPU per view of the 100-row live list, in-process, read cache off: a figure to compare two checkouts
(run it in each; it uses only what every version of bench/ has had since round 2).

    .venv/bin/python -m bench.list_cpu [--views 40] [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from .harness import Stack
from .measure import Upstream, ensure_batches

PAGE = "/projects/default/batches/?limit=100"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with Stack() as stack:
        upstream = Upstream(stack)
        ensure_batches(upstream, 110)
        upstream.close()
        os.environ.update(stack.django_env(DASHBOARD_CACHE_SECONDS="0"))
        import django
        from django.test import Client

        django.setup()
        client = Client(HTTP_HOST="127.0.0.1")
        for _ in range(30):  # warm: templates, row caches, connections
            assert client.get(PAGE).status_code == 200
        cpu, wall = [], []
        for _ in range(args.rounds):
            started, clock = time.process_time(), time.perf_counter()
            for _ in range(args.views):
                client.get(PAGE)
            cpu.append((time.process_time() - started) * 1000 / args.views)
            wall.append((time.perf_counter() - clock) * 1000 / args.views)
    print(f"{PAGE}: {statistics.median(cpu):.2f} ms CPU per view, {statistics.median(wall):.2f} ms wall "
          f"(median of {args.rounds} rounds of {args.views}; upstream on loopback, load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
