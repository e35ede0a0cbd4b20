"""Large files: a 200 MB download through the dashboard against the same download made directly.

The file is uploaded straight to the emulator and made the input file of a batch; the dashboard then
streams it from ``/batches/<id>/files/input.jsonl``. Throughput is bytes over wall time as the client
reads them; the gunicorn workers' peak resident memory (VmHWM, which never goes down) is read from
/proc after the transfers.

Two scenarios: plain loopback (the emulator serves from the page cache at about 1 GB/s: the harshest
case for a proxy) and, when ``throttle_mb_s`` is given, an upstream limited to that rate per connection
by ``bench/throttle.py``, for both the direct client and the dashboard (what a remote API looks like).

The runner uses this when ``bench/large_files.py`` (upload and download, by the create page's author)
is absent. The throttled upload figure alone, on its own stack (2 workers x 4 threads, as the runner's):

    .venv/bin/python -m bench.transfer --upload-only [--throttle-mb-s 100] [--mb 200] [--rounds 3]
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from .harness import API_KEY, ROOT, Stack, free_port, python_executable, stop_process, wait_for_port
from .measure import Upstream

LINE_BODY = "x" * 900


def make_jsonl(path: Path, megabytes: int) -> int:
    """A valid batch input file of about ``megabytes`` MB (1 KB lines)."""
    target = megabytes * 1_000_000
    written = 0
    with path.open("w") as fh:
        i = 0
        while written < target:
            line = json.dumps({
                "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": LINE_BODY}]},
            }) + "\n"
            fh.write(line)
            written += len(line)
            i += 1
    return path.stat().st_size


def _timed_download(client: httpx.Client, url: str, **kwargs) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    with client.stream("GET", url, **kwargs) as response:
        response.raise_for_status()
        size = sum(len(chunk) for chunk in response.iter_raw(1024 * 1024))
        encoding = response.headers.get("content-encoding", "identity")
    return time.perf_counter() - t0, size, encoding


def _peak_rss_mb(stack: Stack) -> float:
    return round(max((m.get("VmHWM", 0) for m in stack.worker_memory().values()), default=0) / 1024, 1)


def _compare(stack: Stack, direct: httpx.Client, file_id: str, batch_id: str, size: int, rounds: int) -> dict:
    direct_s, dash_s = [], []
    with httpx.Client(base_url=stack.dashboard_url, timeout=600) as dashboard:
        for _ in range(rounds):
            seconds, got, _ = _timed_download(direct, f"/v1/files/{file_id}/content", timeout=600)
            if got != size:
                raise RuntimeError(f"direct download returned {got} of {size} bytes")
            direct_s.append(seconds)
            seconds, got, encoding = _timed_download(dashboard, f"/projects/default/batches/{batch_id}/files/input.jsonl")
            if got != size:
                raise RuntimeError(f"dashboard download returned {got} of {size} bytes")
            dash_s.append(seconds)
    direct_mb_s = size / 1e6 / statistics.median(direct_s)
    dash_mb_s = size / 1e6 / statistics.median(dash_s)
    return {
        "direct_mb_s": round(direct_mb_s, 1),
        "dashboard_mb_s": round(dash_mb_s, 1),
        "percent_of_direct": round(100 * dash_mb_s / direct_mb_s, 1),
        "worker_peak_rss_mb": _peak_rss_mb(stack),
        "dashboard_content_encoding": encoding,
        "direct_seconds": [round(s, 2) for s in direct_s],
        "dashboard_seconds": [round(s, 2) for s in dash_s],
    }


def transfer(stack: Stack, upstream: Upstream, *, megabytes: int = 200, rounds: int = 3,
             throttle_mb_s: float = 0, loopback: bool = True) -> dict:
    path = stack.tmp / "large.jsonl"
    size = make_jsonl(path, megabytes)
    result: dict = {"file_bytes": size, "rounds": rounds, "source": "bench/transfer.py"}

    # Upload straight to the upstream (the dashboard's upload path is measured by bench/large_files.py).
    with path.open("rb") as fh:
        t0 = time.perf_counter()
        response = upstream.client.post(
            "/v1/files", files={"file": ("large.jsonl", fh, "application/jsonl")}, data={"purpose": "batch"},
            timeout=600,
        )
        upload_s = time.perf_counter() - t0
    file_id = response.raise_for_status().json()["id"]
    batch = upstream.client.post("/v1/batches", json={
        "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
    }).raise_for_status().json()
    # The emulator validates large inputs in a background thread: let it finish so it does not compete.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if upstream.client.get(f"/v1/batches/{batch['id']}").json()["status"] != "validating":
            break
        time.sleep(1)
    result["upload_direct_mb_s"] = round(size / 1e6 / upload_s, 1)
    result["upload"] = {"skipped": "bench/large_files.py is not there; upload through the dashboard not measured"}

    if loopback:
        stack.start_dashboard(DASHBOARD_CACHE_SECONDS="0")  # fresh workers: VmHWM is this transfer's peak
        result["download"] = _compare(stack, upstream.client, file_id, batch["id"], size, rounds)

    if throttle_mb_s:
        with _throttled(stack, throttle_mb_s) as direct:
            result[f"download_via_{throttle_mb_s:g}_mb_s_upstream"] = _compare(
                stack, direct, file_id, batch["id"], size, rounds
            )
            result[f"upload_via_{throttle_mb_s:g}_mb_s_upstream"] = _compare_upload(stack, direct, megabytes)
    path.unlink()
    return result


def _compare_upload(stack: Stack, direct: httpx.Client, megabytes: int, rounds: int = 3) -> dict:
    """The create page (receive, check every line, upload, create) against a plain upload of the same
    file, both to the throttled upstream, in ``rounds`` interleaved pairs (direct first), each after the
    emulator has checked the previous file in its background thread (which would compete for the CPU).
    The file is a valid batch input (50,000 requests, the API's limit). The share is the median of the
    pairs' shares."""
    from .large_files import make_input, upload_direct, upload_through_create_page, wait_until_checked

    path = stack.tmp / "upload.jsonl"
    size = make_input(path, megabytes=megabytes, lines=50_000)
    pairs = []
    for _ in range(rounds):
        direct_s = upload_direct(direct, path)
        dash_s, batch_id = upload_through_create_page(stack, path)
        pairs.append((direct_s, dash_s))
        wait_until_checked(direct, batch_id)
    path.unlink()
    direct_s = statistics.median(d for d, _ in pairs)
    dash_s = statistics.median(w for _, w in pairs)
    return {
        "direct_mb_s": round(size / 1e6 / direct_s, 1),
        "dashboard_mb_s": round(size / 1e6 / dash_s, 1),
        "percent_of_direct": round(statistics.median(100 * d / w for d, w in pairs), 1),
        "worker_peak_rss_mb": _peak_rss_mb(stack),
        "direct_seconds": [round(d, 2) for d, _ in pairs],
        "dashboard_seconds": [round(w, 2) for _, w in pairs],
        "load_average": round(os.getloadavg()[0], 2),
    }


def upload_through_throttle(*, throttle_mb_s: float, megabytes: int, rounds: int) -> dict:
    """The runner's "upload via a throttled upstream" figure without the rest of the large-file section."""
    with Stack(workers=2, threads=4) as stack, _throttled(stack, throttle_mb_s) as direct:
        return _compare_upload(stack, direct, megabytes, rounds)


@contextlib.contextmanager
def _throttled(stack: Stack, throttle_mb_s: float) -> Iterator[httpx.Client]:
    """bench/throttle.py in front of the emulator, the dashboard restarted to use it, and a direct client
    through the same throttle."""
    port = free_port()
    throttle = subprocess.Popen(
        [python_executable(), "-m", "bench.throttle", "--port", str(port),
         "--target-port", str(stack.emulator_port), "--mb-s", str(throttle_mb_s)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    stack.started_pids.append(throttle.pid)
    try:
        wait_for_port(port, throttle)
        stack.start_dashboard(DASHBOARD_CACHE_SECONDS="0", OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600,
                          headers={"Authorization": f"Bearer {API_KEY}"}) as direct:
            yield direct
    finally:
        stop_process(throttle)


if __name__ == "__main__":
    import argparse
    import sys

    parser = argparse.ArgumentParser(description="bench/transfer.py's figures that can run on their own")
    parser.add_argument("--upload-only", action="store_true", required=True,
                        help="the create page's upload against a direct one, both through bench/throttle.py")
    parser.add_argument("--throttle-mb-s", type=float, default=100.0)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures = upload_through_throttle(throttle_mb_s=args.throttle_mb_s, megabytes=args.mb, rounds=args.rounds)
    print(json.dumps(figures, indent=2))
    sys.exit(0)
