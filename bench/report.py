"""Turn ``bench/run --json out.json`` into the Markdown table in docs/performance.md.

``.venv/bin/python -m bench.report out.json``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .runner import LIST_100_ADDED_MS


def _fmt(value, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "bool":
        return "yes" if value else "no"
    return f"{value:g} {unit}"


def summary_rows(data: dict) -> list[tuple[str, str, str, str]]:
    """(what, figure, target, verdict) for the headline figures, in the issue's order."""
    by_name = {f["name"]: f for f in data["figures"]}
    rows = []

    def add(what: str, name: str, target: str = "") -> None:
        f = by_name.get(name)
        if f is None:
            return
        verdict = {True: "met", False: "**missed**", None: ""}[f["ok"]]
        rows.append((what, _fmt(f["value"], f["unit"]), target or f["target"], verdict))

    for label in ("cache off", "cache on"):
        off = data.get("overhead_cache_off" if label == "cache off" else "overhead_cache_on") or {}
        for key, title in (("list_20", "list page, 20 rows"), ("list_100", "list page, 100 rows"), ("detail", "detail page")):
            r = off.get(key)
            if not r:
                continue
            target = f"≤ {LIST_100_ADDED_MS:g} ms added" if key == "list_100" and label == "cache off" else ""
            ok = r["added_median_ms"] <= LIST_100_ADDED_MS if target else None
            rows.append((
                f"Overhead, {title} [{label}]",
                f"direct {r['direct_median_ms']} ms → dashboard {r['dashboard_median_ms']} ms "
                f"(p90 {r['dashboard_p90_ms']} ms): **+{r['added_median_ms']} ms**, ×{r['ratio']}",
                target,
                {True: "met", False: "**missed**", None: ""}[ok],
            ))
    for key in ("list page", "list page 100", "detail page", "htmx poll", "htmx list poll", "cancel"):
        add(f"Upstream calls per {key} [cache off]", f"upstream calls per {key}")
    for key in ("list page", "detail page", "htmx poll", "htmx list poll"):
        add(f"Upstream calls per {key} [cache on]", f"upstream calls per {key} [cache on]")
    conn = data.get("connections")
    if conn:
        rows.append((
            f"Upstream TCP connections over {conn['page_views']} page views "
            f"({conn['workers']} workers × {conn['threads_per_worker']} threads, {conn['client_concurrency']} clients)",
            f"{conn['upstream_connections']} connections, {conn['upstream_requests']} requests",
            f"≤ {conn['client_concurrency']} (one per thread)",
            "met" if conn["upstream_connections"] <= conn["client_concurrency"] else "**missed**",
        ))
    add("Page weight, cold list page + assets (compressed, with headers)", "list page + assets, bytes on the wire")
    add("Assets from outside the dashboard", "assets from outside the dashboard")
    add("Static assets compressed", "assets compressed (gzip/br)")
    add("Static assets hashed and cached forever (immutable)", "assets cached forever (immutable, hashed)")
    def via(kind: str) -> list[str]:
        return sorted({f["name"].split(":")[0] for f in data["figures"] if f["name"].startswith(f"{kind} via ")})

    for direction in ("download", *via("download"), "upload", *via("upload")):
        add(f"Large file {direction}: direct httpx", f"{direction}: direct httpx throughput")
        add(f"Large file {direction}: through the dashboard", f"{direction}: through the dashboard")
        add(f"Large file {direction}: share of direct", f"{direction}: share of direct throughput")
        add(f"Large file {direction}: worker peak RSS", f"{direction}: gunicorn worker peak RSS")
    add("Results page of the 50,000-line batch: building the kept join (once)",
        "results page of the large batch: building the kept join (once)")
    add("Results page of the 50,000-line batch: first page (join kept, restarted worker)",
        "results page of the large batch: first page")
    add("Results page of the 50,000-line batch: a later page (median)", "results page of the large batch: a later page")
    add("Results page of the 50,000-line batch: worker peak RSS", "results page of the large batch: worker peak RSS")
    add("Time to first render (FCP), cold cache, median", "first contentful paint, cold cache (median)")
    add("Time to first render (FCP), warm cache, median", "first contentful paint, warm cache (median)")
    add("Worker peak RSS after the page views", "gunicorn worker peak RSS after page views (max)")
    add("Load (bench/load.py): errors", "load: errors")
    add("Load (bench/load.py): latency p50", "load: latency p50")
    add("Load (bench/load.py): latency p99", "load: latency p99")
    # Figures from the provider modules (bench/runner.py FIGURE_PROVIDERS), under their own names.
    for module, provided in (data.get("providers") or {}).items():
        payload = provided.get("figures") if isinstance(provided, dict) else None
        for item in (payload or {}).get("figures", []) if isinstance(payload, dict) else []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                add(f"{item['name']} (bench/{module}.py)", item["name"])
    return rows


def markdown(data: dict) -> str:
    m = data["machine"]
    lines = [
        f"Machine: {m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, Python {m['python']}, "
        f"load average at start {m['loadavg_at_start'][0]:.2f}.",
        f"Command: `{data['command']}`",
        "",
        "| What | Figure | Target | |",
        "|---|---|---|---|",
    ]
    for what, figure, target, verdict in summary_rows(data):
        lines.append(f"| {what} | {figure} | {target} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if len(args) != 1:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    print(markdown(json.loads(Path(args[0]).read_text())), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
