"""One command for every benchmark: ``bench/run [--quick] [--json out.json]``.

Starts the emulator and the dashboard (gunicorn, real settings) on free loopback ports, measures, prints
a table of figures against their targets, and stops what it started.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from . import measure
from .harness import ROOT, Stack, python_executable
from .weight import page_weight


# Targets of issue 14 (docs/performance.md).
LIST_100_ADDED_MS = 6.0  # the 100-row list page, read cache off: added to the upstream's median
DOWNLOAD_SHARE = 70.0  # % of a direct download's throughput
UPLOAD_SHARE_LOOPBACK = 45.0  # % of a direct upload's throughput, bare loopback
UPLOAD_SHARE_REMOTE = 85.0  # % of a direct upload's throughput through the throttled upstream
RESULTS_FIRST_PAGE_S = 0.150  # results page of a finished 50,000-line batch once its join is kept
RESULTS_LATER_PAGE_S = 0.050
RESULTS_UNPREPARED_S = 0.400  # a visit before the join is ready (a preview; target set for 20,000 lines)
WORKER_PEAK_MIB = 150

# Benchmarks by other hands that add figures to the same report, run in this order after the built-in
# sections (not with --quick): (module in bench/, section title). The contract
# is in bench/README.md ("Adding figures"): ``python -m bench.<module> --json PATH`` with the stack's
# URLs in BENCH_EMULATOR_URL / BENCH_DASHBOARD_URL; PATH receives {"figures": [{"name", "value", "unit",
# "target", "ok"}, ...], ...details}.
FIGURE_PROVIDERS: list[tuple[str, str]] = [
    ("find", "Index: filtered list page with counts over 200,000 batches (bench/find.py)"),
    ("sync", "Index: one refresh pass with 200,000 indexed batches, 2,000 unfinished (bench/sync.py)"),
    ("webhook_load", "Webhooks with two task workers on PostgreSQL (bench/webhook_load.py, under scripts/with-postgres)"),
    ("cpu_per_view", "CPU per view against the floor, in-process (bench/cpu_per_view.py)"),
    ("saturation", "Load against its floor: filtered list and batch page at saturation and half load (bench/saturation.py)"),
]


@dataclass
class Figure:
    name: str
    value: float | int | None
    unit: str
    target: str = ""
    ok: bool | None = None  # None: no target, reported for context

    def line(self) -> str:
        value = "n/a" if self.value is None else f"{self.value:g}"
        verdict = {True: "ok", False: "MISSED", None: ""}[self.ok]
        return f"  {self.name:<58} {value:>10} {self.unit:<6} {self.target:<16} {verdict}"


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "loadavg_at_start": os.getloadavg(),
    }


def run_substep(script: str, stack: Stack, extra: list[str]) -> dict:
    """Run another benchmark of bench/ (large_files.py, load.py, a figure provider); collect its JSON."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        out_path = Path(out.name)
    cmd = [python_executable(), "-m", f"bench.{Path(script).stem}", *extra, "--json", str(out_path)]
    env = os.environ | {"BENCH_EMULATOR_URL": stack.emulator_url, "BENCH_DASHBOARD_URL": stack.dashboard_url}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    result = {"command": shlex.join(cmd), "returncode": proc.returncode,
              "seconds": round(time.perf_counter() - started, 1), "stdout": proc.stdout[-4000:]}
    if proc.returncode != 0:
        result["stderr"] = proc.stderr[-2000:]
    try:
        result["figures"] = json.loads(out_path.read_text())
    except (OSError, ValueError):
        result["figures"] = None
    finally:
        out_path.unlink(missing_ok=True)
    return result


def overhead_figures(label: str, results: dict, figures: list[Figure]) -> None:
    names = {"list_20": "list page, 20 rows", "list_100": "list page, 100 rows", "detail": "detail page"}
    for key, r in results.items():
        name = f"{names[key]} [{label}]"
        target, ok = "", None
        if key == "list_100" and label == "cache off":
            target, ok = f"<= {LIST_100_ADDED_MS:g} ms added", r["added_median_ms"] <= LIST_100_ADDED_MS
        figures.append(Figure(f"{name}: direct httpx median", r["direct_median_ms"], "ms"))
        figures.append(Figure(f"{name}: dashboard median", r["dashboard_median_ms"], "ms"))
        figures.append(Figure(f"{name}: dashboard p90", r["dashboard_p90_ms"], "ms"))
        figures.append(Figure(f"{name}: added at median", r["added_median_ms"], "ms", target, ok))
        figures.append(Figure(f"{name}: ratio dashboard/direct", r["ratio"], "x"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations; skip large files and the browser")
    parser.add_argument("--json", metavar="PATH", help="also write every figure and detail as JSON here")
    parser.add_argument("--iterations", type=int, help="timed requests per overhead case (default 200, quick 15)")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", 2)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", 4)))
    parser.add_argument("--views-per-worker", type=int, help="page views per worker for the keep-alive count "
                        "(default 1000, quick 25)")
    parser.add_argument("--no-browser", action="store_true", help="skip time to first render")
    parser.add_argument("--no-large-files", action="store_true", help="skip the 200 MB transfers")
    parser.add_argument("--file-mb", type=int, default=200, help="size of the large-file transfer")
    parser.add_argument("--throttle-mb-s", type=float, default=100.0,
                        help="also download through an upstream limited to this rate (0: skip)")
    parser.add_argument("--log", action="store_true", help="keep emulator/gunicorn output in the temp dir")
    args = parser.parse_args(argv)

    quick = args.quick
    iterations = args.iterations or (15 if quick else 200)
    warmup = 5 if quick else 30
    views_per_worker = args.views_per_worker or (25 if quick else 1000)
    call_views = 3 if quick else 20
    figures: list[Figure] = []
    details: dict = {"machine": machine(), "command": "bench/run " + shlex.join(argv or sys.argv[1:])}

    def section(title: str) -> None:
        print(f"\n{title}", flush=True)

    def emit(*new: Figure) -> None:
        for f in new:
            figures.append(f)
            print(f.line(), flush=True)

    print(f"bench: {details['machine']['nproc']} CPU ({details['machine']['cpu']}), "
          f"{details['machine']['memory_gib']} GiB, load {details['machine']['loadavg_at_start'][0]:.2f}; "
          f"gunicorn {args.workers} workers x {args.threads} threads", flush=True)

    with Stack(workers=args.workers, threads=args.threads, log=args.log) as stack:
        upstream = measure.Upstream(stack)
        try:
            measure.ensure_batches(upstream, 110)
            cancellable = upstream.create_batches(call_views)
            batch_id = upstream.client.get("/v1/batches", params={"limit": 1}).json()["data"][0]["id"]

            def overhead(label: str) -> dict:
                """The proxy's overhead figures, printed as they come; returns their details."""
                measured = measure.overhead(stack, upstream, iterations=iterations, warmup=warmup, batch_id=batch_id)
                start = len(figures)
                overhead_figures(label, measured, figures)
                for f in figures[start:]:
                    print(f.line(), flush=True)
                return measured

            # ---- cache off: the honest cost of the proxy ---------------------------------------
            stack.start_dashboard(DASHBOARD_CACHE_SECONDS="0")
            section("Upstream keep-alive (read cache off; fresh workers)")
            conn = measure.connections(stack, upstream, views_per_worker=views_per_worker)
            details["connections"] = conn
            emit(
                Figure(f"page views ({conn['client_concurrency']} concurrent clients)", conn["page_views"], "views"),
                Figure("page views per second", conn["page_views_per_second"], "/s"),
                Figure("upstream TCP connections opened", conn["upstream_connections"], "conns",
                       f"<= {conn['client_concurrency']} (threads)",
                       conn["upstream_connections"] <= conn["client_concurrency"]),
                Figure("failed page views", conn["failures"], "views", "0", conn["failures"] == 0),
            )

            section("Upstream calls per view (read cache off)")
            calls = measure.calls_per_view(stack, upstream, views=call_views, batch_id=batch_id,
                                           cancellable=cancellable)
            details["calls_cache_off"] = calls
            for key, value in calls.items():
                emit(Figure(f"upstream calls per {key.replace('_', ' ')}", value, "calls", "1", value == 1))

            section("Proxy overhead (read cache off: every view calls the upstream)")
            details["overhead_cache_off"] = overhead("cache off")

            section("Page weight (cold list page, every asset, compressed)")
            weight = page_weight(stack.dashboard_url)
            details["page_weight"] = weight
            for asset in [weight["document"], *weight["assets"]]:
                print(f"    {asset['url'].removeprefix(stack.dashboard_url):<60} {asset['body_bytes']:>7} B "
                      f"{asset['content_encoding']:<8} {asset['cache_control']}")
            emit(
                Figure("list page + assets, bytes on the wire", round(weight["total_bytes_with_headers"] / 1024, 1),
                       "KiB", "< 60 KiB", weight["total_bytes_with_headers"] < 60 * 1024),
                Figure("list page HTML, uncompressed", round(weight["document_uncompressed_bytes"] / 1024, 1), "KiB"),
                Figure("assets from outside the dashboard", len(weight["foreign_assets"]), "assets", "0",
                       not weight["foreign_assets"]),
                Figure("assets compressed (gzip/br)", int(weight["all_assets_compressed"]), "bool", "yes",
                       weight["all_assets_compressed"]),
                Figure("assets cached forever (immutable, hashed)", int(weight["all_assets_immutable"]), "bool", "yes",
                       weight["all_assets_immutable"]),
            )

            mem = stack.worker_memory()
            details["worker_memory_kb_after_page_views"] = mem
            emit(Figure("gunicorn worker peak RSS after page views (max)",
                        round(max((m.get("VmHWM", 0) for m in mem.values()), default=0) / 1024, 1), "MiB"))

            if not (quick or args.no_browser):
                section("Time to first render (headless Chromium, list page)")
                from .render import first_render

                render = first_render(stack.dashboard_url + "/projects/default/batches/", runs=9)
                details["first_render"] = render
                emit(
                    Figure("first contentful paint, cold cache (median)", render["cold_fcp_median_ms"], "ms"),
                    Figure("first contentful paint, warm cache (median)", render["warm_fcp_median_ms"], "ms"),
                    Figure("load event, cold cache (median)", render["cold_load_median_ms"], "ms"),
                )

            if not (quick or args.no_large_files):
                section(f"Large files ({args.file_mb} MB through the dashboard vs direct)")
                from .transfer import transfer

                # The download is measured here (3 rounds interleaved with the direct download, after the
                # emulator has finished validating the file, so nothing else competes for the CPU);
                # bench/large_files.py adds the upload through the create page and the results page.
                large = transfer(stack, upstream, megabytes=args.file_mb, throttle_mb_s=args.throttle_mb_s)
                sub = run_substep("large_files.py", stack, ["--mb", str(args.file_mb)])
                large["large_files_py"] = sub
                if sub["returncode"] != 0:
                    print(f"  bench/large_files.py failed ({sub['returncode']}):\n{sub.get('stderr', '')}")
                if isinstance(sub.get("figures"), dict):
                    for key in ("upload", "results_page"):
                        if key in sub["figures"]:
                            large[key] = sub["figures"][key]
                    if isinstance(sub["figures"].get("download"), dict):
                        large["download_single_run"] = sub["figures"]["download"]
                details["large_files"] = large
                for f in large_file_figures(large):
                    emit(f)

            # ---- cache on: what a viewer sees with the short shared read cache -------------------
            cache_seconds = os.environ.get("DASHBOARD_CACHE_SECONDS", "2")
            stack.start_dashboard(DASHBOARD_CACHE_SECONDS=cache_seconds)
            section(f"Proxy overhead (read cache on, DASHBOARD_CACHE_SECONDS={cache_seconds})")
            details["overhead_cache_on"] = overhead("cache on")
            calls_on = measure.calls_per_view(stack, upstream, views=call_views, batch_id=batch_id,
                                              cancellable=upstream.create_batches(call_views))
            details["calls_cache_on"] = calls_on
            for key, value in calls_on.items():
                emit(Figure(f"upstream calls per {key.replace('_', ' ')} [cache on]", value, "calls", "<= 1",
                            value <= 1))

            if not quick:
                section("Load (bench/load.py: simulated operators, its own emulator and gunicorn)")
                load = run_substep("load.py", stack, [])
                details["load"] = load
                print(load["stdout"].rstrip())
                lf = load.get("figures") or {}
                if lf:
                    emit(
                        Figure("load: dashboard requests per second", lf.get("dashboard_rps"), "/s"),
                        Figure("load: errors", lf.get("errors"), "reqs", "0", lf.get("errors") == 0),
                        Figure("load: latency p50", lf.get("p50_ms"), "ms"),
                        Figure("load: latency p99", lf.get("p99_ms"), "ms"),
                        Figure("load: upstream requests per second", lf.get("upstream_rps"), "/s"),
                    )
                else:
                    print(f"  bench/load.py produced no JSON (exit {load['returncode']}): {load.get('stderr', '')}")

                details["providers"] = {}
                for module, title in FIGURE_PROVIDERS:
                    section(title)
                    provided = run_substep(f"{module}.py", stack, [])
                    details["providers"][module] = provided
                    new = provider_figures(provided)
                    if provided["returncode"] != 0 or not new:
                        print(f"  bench/{module}.py exit {provided['returncode']}, {len(new)} figures: "
                              f"{provided.get('stderr', '')[-1000:]}")
                    emit(*new)
        finally:
            upstream.close()
            details["started_pids"] = stack.started_pids

    missed = [f for f in figures if f.ok is False]
    print(f"\n{len(figures)} figures, {len(missed)} missed their target.")
    if args.json:
        payload = details | {"figures": [asdict(f) for f in figures]}
        Path(args.json).write_text(json.dumps(payload, indent=2, default=str))
        print(f"JSON written to {args.json}")
    return 0


def large_file_figures(large: dict) -> list[Figure]:
    """Figures from bench/transfer.py, with the upload and results page from bench/large_files.py."""
    figs = large
    out = []
    directions = [
        "download",
        *sorted(k for k in figs if k.startswith("download_via_")),
        "upload",
        *sorted(k for k in figs if k.startswith("upload_via_")),
    ]
    single = figs.get("download_single_run")
    if isinstance(single, dict):
        # bench/large_files.py's one-shot download, measured while the emulator may still be validating
        # the file it just received: shown for reference, the target is judged on the 3-round figure.
        out.append(Figure("download, one run by bench/large_files.py: share of direct",
                          single.get("percent_of_direct"), "%"))
    for direction in directions:
        d = figs.get(direction)
        if not isinstance(d, dict):
            continue
        label = (
            direction.replace("download_via_", "download via a ")
            .replace("upload_via_", "upload via a ")
            .replace("_mb_s_upstream", " MB/s upstream")
        )
        if d.get("skipped"):
            print(f"  {label}: skipped ({d['skipped']})")
            continue
        out.append(Figure(f"{label}: direct httpx throughput", d.get("direct_mb_s"), "MB/s"))
        out.append(Figure(f"{label}: through the dashboard", d.get("dashboard_mb_s"), "MB/s"))
        pct = d.get("percent_of_direct")
        if direction.startswith("download"):
            share = DOWNLOAD_SHARE
        else:
            share = UPLOAD_SHARE_REMOTE if direction.startswith("upload_via_") else UPLOAD_SHARE_LOOPBACK
        out.append(Figure(f"{label}: share of direct throughput", pct, "%", f">= {share:g} %",
                          None if pct is None else pct >= share))
        peak = d.get("worker_peak_rss_mb")
        out.append(Figure(f"{label}: gunicorn worker peak RSS", peak, "MiB", f"< {WORKER_PEAK_MIB} MiB",
                          None if peak is None else peak < WORKER_PEAK_MIB))
    results = figs.get("results_page")
    if isinstance(results, dict):
        unprepared = results.get("unprepared_first_view_seconds")
        if unprepared is not None:
            out.append(Figure("results page of the large batch: a visit before its join is ready (the preview)",
                              round(unprepared * 1000, 1), "ms", f"<= {RESULTS_UNPREPARED_S * 1000:g} ms",
                              unprepared <= RESULTS_UNPREPARED_S))
        if results.get("build_seconds") is not None:
            out.append(Figure("results page of the large batch: preparing the kept join in the task worker (once)",
                              results.get("build_seconds"), "s"))
        first, later = results.get("first_page_seconds"), results.get("next_page_seconds")
        out.append(Figure("results page of the large batch: first page", None if first is None else round(first * 1000, 1),
                          "ms", f"<= {RESULTS_FIRST_PAGE_S * 1000:g} ms",
                          None if first is None else first <= RESULTS_FIRST_PAGE_S))
        out.append(Figure("results page of the large batch: a later page", None if later is None else round(later * 1000, 1),
                          "ms", f"<= {RESULTS_LATER_PAGE_S * 1000:g} ms",
                          None if later is None else later <= RESULTS_LATER_PAGE_S))
        peak = results.get("worker_peak_rss_mb")
        out.append(Figure("results page of the large batch: worker peak RSS", peak, "MiB", f"< {WORKER_PEAK_MIB} MiB",
                          None if peak is None else peak < WORKER_PEAK_MIB))
    return out


def provider_figures(result: dict) -> list[Figure]:
    """The figures a provider module wrote (see FIGURE_PROVIDERS); malformed entries are skipped."""
    out = []
    payload = result.get("figures")
    for item in (payload or {}).get("figures", []) if isinstance(payload, dict) else []:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        value = item.get("value")
        ok = item.get("ok")
        out.append(Figure(
            item["name"],
            value if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
            str(item.get("unit", "")),
            str(item.get("target", "")),
            ok if isinstance(ok, bool) else None,
        ))
    return out


if __name__ == "__main__":
    sys.exit(main())
