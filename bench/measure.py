"""Latency against the upstream itself, upstream calls per page, and keep-alive to the upstream."""

from __future__ import annotations

import json
import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from .harness import API_KEY, Stack

CSRF_RE = re.compile(r'"X-CSRFToken": "([^"]+)"|name="csrfmiddlewaretoken" value="([^"]+)"')


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


@dataclass
class Timing:
    median_ms: float
    p90_ms: float
    n: int

    @classmethod
    def of(cls, seconds: list[float]) -> Timing:
        ms = [s * 1000 for s in seconds]
        return cls(round(statistics.median(ms), 2), round(percentile(ms, 90), 2), len(ms))


class Upstream:
    """A keep-alive client for the emulator: the direct calls and the control endpoints."""

    def __init__(self, stack: Stack) -> None:
        self.client = httpx.Client(
            base_url=stack.emulator_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=60
        )

    def close(self) -> None:
        self.client.close()

    def stats(self) -> dict:
        return self.client.get("/_emulator/stats").raise_for_status().json()

    def reset_counts(self) -> None:
        self.client.post("/_emulator/reset-counts").raise_for_status()

    def upload_jsonl(self, lines: int = 3) -> str:
        body = "".join(
            json.dumps({
                "custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Say {i}."}]},
            }) + "\n"
            for i in range(lines)
        )
        response = self.client.post(
            "/v1/files", files={"file": ("bench.jsonl", body.encode(), "application/jsonl")},
            data={"purpose": "batch"},
        )
        return response.raise_for_status().json()["id"]

    def create_batches(self, count: int) -> list[str]:
        file_id = self.upload_jsonl()
        ids = []
        for i in range(count):
            response = self.client.post("/v1/batches", json={
                "input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
                "metadata": {"description": f"bench batch {i}"},
            })
            ids.append(response.raise_for_status().json()["id"])
        return ids

    def batch_count(self) -> int:
        total, after = 0, None
        while True:
            params = {"limit": 100} | ({"after": after} if after else {})
            body = self.client.get("/v1/batches", params=params).raise_for_status().json()
            total += len(body["data"])
            if not body.get("has_more"):
                return total
            after = body["last_id"]


def ensure_batches(upstream: Upstream, at_least: int) -> None:
    """The seed has about 65 batches; a 100-row page needs more."""
    missing = at_least - upstream.batch_count()
    if missing > 0:
        upstream.create_batches(missing)


# ---------------------------------------------------------------------------
# Proxy overhead: the same upstream call, direct vs through the dashboard
# ---------------------------------------------------------------------------


def overhead(stack: Stack, upstream: Upstream, *, iterations: int, warmup: int, batch_id: str) -> dict:
    """Interleave direct and dashboard requests so both see the same machine load."""
    cases = {
        "list_20": ("/projects/default/batches/", "/v1/batches", {"limit": 20}),
        "list_100": ("/projects/default/batches/?limit=100", "/v1/batches", {"limit": 100}),
        "detail": (f"/projects/default/batches/{batch_id}/", f"/v1/batches/{batch_id}", None),
    }
    results = {}
    with httpx.Client(base_url=stack.dashboard_url, timeout=30) as dashboard:
        for name, (page, api_path, params) in cases.items():
            direct_s, dash_s = [], []
            for i in range(warmup + iterations):
                t0 = time.perf_counter()
                upstream.client.get(api_path, params=params).raise_for_status()
                t1 = time.perf_counter()
                response = dashboard.get(page)
                t2 = time.perf_counter()
                if response.status_code != 200:
                    raise RuntimeError(f"GET {page} answered {response.status_code}")
                if i >= warmup:
                    direct_s.append(t1 - t0)
                    dash_s.append(t2 - t1)
            direct, dash = Timing.of(direct_s), Timing.of(dash_s)
            results[name] = {
                "page": page,
                "direct_median_ms": direct.median_ms,
                "direct_p90_ms": direct.p90_ms,
                "dashboard_median_ms": dash.median_ms,
                "dashboard_p90_ms": dash.p90_ms,
                "added_median_ms": round(dash.median_ms - direct.median_ms, 2),
                "ratio": round(dash.median_ms / direct.median_ms, 2) if direct.median_ms else None,
                "n": dash.n,
            }
    return results


# ---------------------------------------------------------------------------
# Upstream calls per page view
# ---------------------------------------------------------------------------


def _csrf(client: httpx.Client, page: str) -> str:
    html = client.get(page).text
    match = CSRF_RE.search(html)
    if not match:
        raise RuntimeError(f"no CSRF token on {page}")
    return match.group(1) or match.group(2)


def calls_per_view(stack: Stack, upstream: Upstream, *, views: int, batch_id: str, cancellable: list[str]) -> dict:
    """Upstream requests per list page, detail page, htmx poll and cancel (emulator counts before/after)."""
    results = {}
    with httpx.Client(base_url=stack.dashboard_url, timeout=30) as dashboard:
        cases = {
            "list_page": lambda: dashboard.get("/projects/default/batches/"),
            "list_page_100": lambda: dashboard.get("/projects/default/batches/?limit=100"),
            "detail_page": lambda: dashboard.get(f"/projects/default/batches/{batch_id}/"),
            "htmx_poll": lambda: dashboard.get(
                f"/projects/default/batches/{batch_id}/", headers={"HX-Request": "true", "HX-Target": "batch-live"}
            ),
            "htmx_list_poll": lambda: dashboard.get(
                "/projects/default/batches/", headers={"HX-Request": "true", "HX-Target": "batch-table"}
            ),
        }
        for name, view in cases.items():
            upstream.reset_counts()
            for _ in range(views):
                view().raise_for_status()
            results[name] = round(upstream.stats()["total"] / views, 2)

        # Cancel: one POST per cancellable batch (each can be cancelled once); the token comes from a
        # page fetched before the counters are reset.
        token = _csrf(dashboard, "/projects/default/batches/")
        targets = cancellable[:views]
        upstream.reset_counts()
        for bid in targets:
            response = dashboard.post(f"/projects/default/batches/{bid}/cancel/", headers={"X-CSRFToken": token})
            if response.status_code not in {200, 302, 303}:
                raise RuntimeError(f"cancel answered {response.status_code}")
        results["cancel"] = round(upstream.stats()["total"] / max(len(targets), 1), 2)
    return results


# ---------------------------------------------------------------------------
# Keep-alive: TCP connections opened upstream over many page views
# ---------------------------------------------------------------------------


def connections(stack: Stack, upstream: Upstream, *, views_per_worker: int) -> dict:
    """Page views from as many concurrent clients as the dashboard has threads; count new upstream sockets.

    The emulator counts every accepted connection; our control client's connection is already open
    before the reset, so what is counted is the dashboard's.
    """
    concurrency = stack.workers * stack.threads
    total = views_per_worker * stack.workers
    upstream.reset_counts()

    def worker(n: int) -> int:
        failures = 0
        with httpx.Client(base_url=stack.dashboard_url, timeout=30) as client:
            for _ in range(n):
                if client.get("/projects/default/batches/").status_code != 200:
                    failures += 1
        return failures

    shares = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        failures = sum(pool.map(worker, shares))
    elapsed = time.perf_counter() - t0
    stats = upstream.stats()
    return {
        "page_views": total,
        "workers": stack.workers,
        "threads_per_worker": stack.threads,
        "client_concurrency": concurrency,
        "upstream_connections": stats["connections"],
        "upstream_requests": stats["total"],
        "failures": failures,
        "page_views_per_second": round(total / elapsed, 1),
    }
