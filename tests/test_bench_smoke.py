"""The benchmark harness itself works: a tiny run starts everything, prints figures, and cleans up.

This is not a timing test: it checks that every printed figure is a parsed number, not how big it is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIGURE_LINE = re.compile(r"^  (?P<name>\S.*?)\s{2,}(?P<value>-?\d+(?:\.\d+)?(?:e[-+]?\d+)?|n/a) (?P<unit>\S+)")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict]:
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    proc = subprocess.run(
        [str(ROOT / "bench" / "run"), "--quick", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc, json.loads(out.read_text())


def test_quick_bench_prints_every_figure_as_a_number_and_writes_the_same_figures_as_json(quick_run):
    proc, payload = quick_run

    printed = {m["name"]: m["value"] for line in proc.stdout.splitlines() if (m := FIGURE_LINE.match(line))}
    figures = payload["figures"]
    assert len(figures) >= 30
    assert set(printed) == {f["name"] for f in figures}
    for figure in figures:
        assert isinstance(figure["value"], (int, float)), figure
        assert float(printed[figure["name"]]) == float(f"{figure['value']:g}")

    names = {f["name"] for f in figures}
    for expected in (
        "list page, 100 rows [cache off]: added at median",
        "list page, 20 rows [cache off]: ratio dashboard/direct",
        "detail page [cache on]: dashboard median",
        "upstream calls per htmx poll",
        "upstream calls per cancel",
        "upstream TCP connections opened",
        "list page + assets, bytes on the wire",
        "assets from outside the dashboard",
    ):
        assert expected in names
    assert payload["machine"]["nproc"] >= 1
    assert payload["overhead_cache_off"]["list_100"]["n"] == 15


def test_quick_bench_stops_every_process_it_started(quick_run):
    _, payload = quick_run

    pids = payload["started_pids"]
    # The emulator, two gunicorn masters (cache off, cache on) and their workers.
    assert len(pids) >= 4
    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        if b"zombie" not in Path(f"/proc/{pid}/status").read_bytes().lower():
            alive.append(pid)
    assert alive == []
