"""Large files through the dashboard: a 200 MB, 50,000-line input uploaded through the create page,
and a 200 MB file downloaded through the dashboard's streamed download route.

    .venv/bin/python bench/large_files.py [--mb 200] [--lines 50000] [--json out.json] [--only upload,results]

It starts its own emulator and a gunicorn with ONE worker (so the worker that served the request is the
one measured) on loopback ports, via bench/harness.py. Figures:

* upload: the create page's full path (Django receives the file to a temporary file on disk, the JSONL
  checker streams every line, the file is streamed to the Files API, the batch is created), timed from
  the first byte sent to the redirect to the new batch; against the same file POSTed straight to the
  emulator's /v1/files.
* download: ``/batches/<id>/files/input.jsonl`` (the same view and streaming code as the output and
  error files; the emulator can not produce a 200 MB *output* file, its answers are short), against
  the same file fetched straight from the emulator.
* results: the results page of the finished 50,000-request batch. Its first view builds the kept
  custom_id join (``build_seconds``: streams the three files once, writes the rows); then the dashboard
  is restarted (a fresh worker, nothing in memory: the join comes from the database) and page 1 is timed
  (``first_page_seconds``, target 150 ms), then several later pages, all and failed-only
  (``next_page_seconds``: their median, target 50 ms).
* the worker's peak resident memory (VmHWM from /proc/<pid>/status), reset before each phase by
  writing 5 to /proc/<pid>/clear_refs (Linux ≥ 4.0); if that is refused, the dashboard is restarted
  between phases instead. Target: below 150 MiB.

The runner (bench/run) calls this with ``--mb`` and ``--json``; it ignores the runner's stack because it
needs a single-worker dashboard whose peak memory covers nothing but the transfer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import API_KEY, ROOT, Stack, proc_memory_kb, python_executable  # noqa: E402

ENDPOINT = "/v1/chat/completions"


def make_input(path: Path, *, megabytes: int, lines: int) -> int:
    """A valid batch input of ``lines`` requests totalling about ``megabytes`` MB (10**6 bytes)."""
    skeleton = json.dumps({
        "custom_id": "r0000000", "method": "POST", "url": ENDPOINT,
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": ""}]},
    })
    per_line = max(megabytes * 1_000_000 // lines - len(skeleton) - 1, 1)
    filler = ("lorem ipsum dolor sit amet " * (per_line // 27 + 1))[:per_line]
    with path.open("w") as fh:
        for i in range(lines):
            fh.write(json.dumps({
                "custom_id": f"r{i:07d}", "method": "POST", "url": ENDPOINT,
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": filler}]},
            }) + "\n")
    return path.stat().st_size


def reset_peak(stack: Stack) -> bool:
    ok = True
    for pid in stack.worker_pids():
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


def worker_peak_mib(stack: Stack) -> float:
    peaks = [proc_memory_kb(pid).get("VmHWM", 0) for pid in stack.worker_pids()]
    return round(max(peaks, default=0) / 1024, 1)


def worker_rss_mib(stack: Stack) -> float:
    values = [proc_memory_kb(pid).get("VmRSS", 0) for pid in stack.worker_pids()]
    return round(max(values, default=0) / 1024, 1)


def fresh_phase(stack: Stack) -> None:
    """Make the next VmHWM reading cover only the next phase."""
    if not reset_peak(stack):
        stack.start_dashboard()


def upload_through_create_page(stack: Stack, path: Path) -> tuple[float, str]:
    with httpx.Client(base_url=stack.dashboard_url, timeout=900) as client:
        page = client.get("/projects/default/batches/new/").raise_for_status().text
        token = re.search(r'name="token" value="([^"]+)"', page).group(1)
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        with path.open("rb") as fh:
            t0 = time.perf_counter()
            response = client.post(
                "/projects/default/batches/new/",
                data={"csrfmiddlewaretoken": csrf, "token": token, "endpoint": "auto", "completion_window": "24h",
                      "metadata_key": "bench", "metadata_value": "large_files"},
                files={"file": (path.name, fh, "application/jsonl")},
            )
            seconds = time.perf_counter() - t0
    if response.status_code != 302:
        raise RuntimeError(f"create page answered {response.status_code}:\n{response.text[-2000:]}")
    batch_id = response.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    return seconds, batch_id


def upload_direct(upstream: httpx.Client, path: Path) -> float:
    with path.open("rb") as fh:
        t0 = time.perf_counter()
        upstream.post("/v1/files", files={"file": (path.name, fh, "application/jsonl")},
                      data={"purpose": "batch"}, timeout=900).raise_for_status()
        return time.perf_counter() - t0


def timed_download(client: httpx.Client, url: str) -> tuple[float, int]:
    t0 = time.perf_counter()
    with client.stream("GET", url) as response:
        response.raise_for_status()
        size = sum(len(chunk) for chunk in response.iter_raw(1024 * 1024))
    return time.perf_counter() - t0, size


def wait_until_checked(upstream: httpx.Client, batch_id: str) -> None:
    """Wait until the emulator has checked the batch's input (it does so in a background thread)."""
    deadline = time.monotonic() + 600
    while upstream.get(f"/v1/batches/{batch_id}", timeout=120).json()["status"] == "validating":
        if time.monotonic() > deadline:
            raise RuntimeError("the emulator did not finish validating in 10 minutes")
        upstream.post("/_emulator/advance", json={"seconds": 5}, timeout=120)
        time.sleep(0.2)


def prepare_in_worker(stack: Stack, batch_id: str) -> float:
    """Run the results preparation task as the task worker runs it; its own seconds (from the task's log)."""
    code = ("import django, time; django.setup(); from batches.results.prepare import prepare_results; "
            f"t0 = time.perf_counter(); print(prepare_results.call('default', {batch_id!r})); "
            "print(time.perf_counter() - t0)")
    done = subprocess.run([python_executable(), "-c", code], cwd=ROOT, env=stack.django_env(), capture_output=True,
                          text=True, check=True)
    outcome, seconds = done.stdout.strip().splitlines()[-2:]
    if not outcome.startswith("ready"):
        raise RuntimeError(f"preparing the results did not build the join: {outcome}")
    return float(seconds)


def wait_until_done(upstream: httpx.Client, batch_id: str) -> None:
    """Let the emulator validate (in the background for big files), then jump its clock to the end."""
    deadline = time.monotonic() + 600
    while upstream.get(f"/v1/batches/{batch_id}").json()["status"] == "validating":
        if time.monotonic() > deadline:
            raise RuntimeError("the emulator did not finish validating in 10 minutes")
        upstream.post("/_emulator/advance", json={"seconds": 5})
        time.sleep(0.5)
    upstream.post("/_emulator/advance", json={"seconds": 3600}).raise_for_status()
    status = upstream.get(f"/v1/batches/{batch_id}", timeout=600).json()["status"]
    if status != "completed":
        raise RuntimeError(f"the batch is {status}, expected completed")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=200, help="input size in MB (10**6 bytes); default 200")
    parser.add_argument("--lines", type=int, default=50_000, help="requests in the input; default 50,000")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this path")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved upload rounds (median); default 3")
    parser.add_argument("--only", default="upload,download,results",
                        help="comma-separated phases to run: upload, download, results (default: all)")
    args = parser.parse_args(argv)
    phases = {p.strip() for p in args.only.split(",") if p.strip()}

    with Stack(workers=1, threads=4) as stack:
        stack.start_dashboard()
        path = stack.tmp / "large_input.jsonl"
        t0 = time.perf_counter()
        size = make_input(path, megabytes=args.mb, lines=args.lines)
        print(f"generated {size:,} bytes, {args.lines:,} lines in {time.perf_counter() - t0:.1f} s")
        idle_rss = worker_rss_mib(stack)

        upstream = httpx.Client(base_url=stack.emulator_url, headers={"Authorization": f"Bearer {API_KEY}"})
        # Interleaved rounds (direct, then the create page), each after the emulator has finished checking
        # the previous upload in its background thread: both see the same machine. Median of the shares.
        rounds = []
        fresh_phase(stack)
        for _ in range(args.rounds):
            direct_up = upload_direct(upstream, path)
            dash_up, batch_id = upload_through_create_page(stack, path)
            rounds.append((direct_up, dash_up))
            wait_until_checked(upstream, batch_id)
        up_peak = worker_peak_mib(stack)
        direct_up = statistics.median(r[0] for r in rounds)
        dash_up = statistics.median(r[1] for r in rounds)
        share = statistics.median(100 * d / w for d, w in rounds)
        batch = upstream.get(f"/v1/batches/{batch_id}").raise_for_status().json()
        meta = upstream.get(f"/v1/files/{batch['input_file_id']}").raise_for_status().json()
        if meta["bytes"] != size:
            raise RuntimeError(f"the uploaded file has {meta['bytes']} bytes, expected {size}")
        path.unlink()

        if "download" in phases:
            direct_down, got = timed_download(upstream, f"/v1/files/{batch['input_file_id']}/content")
            fresh_phase(stack)
            with httpx.Client(base_url=stack.dashboard_url, timeout=900) as dashboard:
                dash_down, got_dash = timed_download(dashboard, f"/projects/default/batches/{batch_id}/files/input.jsonl")
            down_peak = worker_peak_mib(stack)
            if got != size or got_dash != size:
                raise RuntimeError(f"downloads returned {got} / {got_dash} bytes, expected {size}")

        if "results" in phases:
            # The results page of the finished 50,000-request batch: its first view builds the kept join.
            wait_until_done(upstream, batch_id)
            # A fresh worker: no batch left in the read cache from before it finished, and VmHWM is this phase's.
            stack.start_dashboard()
            results_url = f"/projects/default/batches/{batch_id}/results/"
            with httpx.Client(base_url=stack.dashboard_url, timeout=900) as dashboard:
                # Before the join is ready (no task worker runs here): the preview, at once.
                t0 = time.perf_counter()
                preview_html = dashboard.get(results_url).raise_for_status().text
                unprepared = time.perf_counter() - t0
            if "is being prepared" not in preview_html or "results-rows" not in preview_html:
                raise RuntimeError("the first view of the unprepared results is not the preview")
            # What the task worker does when the index learns that the batch finished.
            build = prepare_in_worker(stack, batch_id)
            results_peak = worker_peak_mib(stack)
            stack.start_dashboard()  # a fresh worker: nothing in memory, the join comes from the database
            with httpx.Client(base_url=stack.dashboard_url, timeout=900) as dashboard:
                dashboard.get("/healthz")  # the worker is up (not part of the page's time)
                t0 = time.perf_counter()
                first_html = dashboard.get(results_url).raise_for_status().text
                first_page = time.perf_counter() - t0
                if "results-rows" not in first_html:
                    raise RuntimeError("the results page shows no rows")
                later = []
                for query in ("?page=500", "?page=2&filter=failed", "?page=250", "?page=999", "?page=3&filter=failed",
                              "?page=123", "?page=321", "?page=1&filter=failed", "?page=400"):
                    t0 = time.perf_counter()
                    dashboard.get(results_url + query).raise_for_status()
                    later.append(time.perf_counter() - t0)
                later_page = statistics.median(later)
        upstream.close()

    mb = size / 1e6
    figures: dict = {"file_bytes": size, "lines": args.lines, "worker_idle_rss_mb": idle_rss, "phases": sorted(phases)}
    figures["upload"] = {
        "direct_mb_s": round(mb / direct_up, 1),
        "dashboard_mb_s": round(mb / dash_up, 1),
        "dashboard_seconds": round(dash_up, 2),
        "direct_seconds": round(direct_up, 2),
        "percent_of_direct": round(share, 1),
        "rounds_seconds": [[round(d, 3), round(w, 3)] for d, w in rounds],
        "load_average": round(os.getloadavg()[0], 2),
        "worker_peak_rss_mb": up_peak,
        "what": "create page: receive to disk while checking every line, stream to /v1/files, create the batch",
    }
    if "results" in phases:
        figures["results_page"] = {
            "unprepared_first_view_seconds": round(unprepared, 3),
            "build_seconds": round(build, 3),
            "first_page_seconds": round(first_page, 3),
            "next_page_seconds": round(later_page, 3),
            "later_pages_seconds": [round(x, 3) for x in later],
            "worker_peak_rss_mb": results_peak,
            "what": "/projects/default/batches/<id>/results/ of the finished batch: the view before the join is "
                    "ready (a preview), the join built as the task worker builds it when the batch ends, then the "
                    "first page and later pages timed in a restarted worker",
        }
    if "download" in phases:
        figures["download"] = {
            "direct_mb_s": round(mb / direct_down, 1),
            "dashboard_mb_s": round(mb / dash_down, 1),
            "dashboard_seconds": round(dash_down, 2),
            "percent_of_direct": round(100 * direct_down / dash_down, 1),
            "worker_peak_rss_mb": down_peak,
            "what": "/projects/default/batches/<id>/files/input.jsonl, the streamed download view",
        }
    print(f"file: {size / 1e6:.1f} MB, {args.lines:,} requests; gunicorn worker idle RSS {idle_rss} MiB")
    for direction in ("upload", "download"):
        f = figures.get(direction)
        if f is None:
            continue
        verdict = "OK" if f["worker_peak_rss_mb"] < 150 else "OVER TARGET"
        print(
            f"{direction:8s}: dashboard {f['dashboard_mb_s']} MB/s ({f['dashboard_seconds']} s), "
            f"direct {f['direct_mb_s']} MB/s, {f['percent_of_direct']} % of direct; "
            f"worker peak RSS {f['worker_peak_rss_mb']} MiB (target < 150: {verdict})"
        )
    r = figures.get("results_page")
    if r is not None:
        print(
            f"results : before the join is ready {r['unprepared_first_view_seconds']} s (target 0.4); preparing it "
            f"{r['build_seconds']} s (the task worker); in a restarted worker: first page "
            f"{r['first_page_seconds']} s (target 0.15), later pages {r['next_page_seconds']} s median (target 0.05); "
            f"worker peak RSS {r['worker_peak_rss_mb']} MiB"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    peaks = [figures[k]["worker_peak_rss_mb"] for k in ("upload", "download", "results_page") if k in figures]
    return 0 if max(peaks) < 150 else 1


if __name__ == "__main__":
    sys.exit(main())
