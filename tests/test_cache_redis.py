"""Shared reads across instances through a real Redis: two gunicorn instances of the dashboard (two
worker processes each) share one redis-server, so every viewer of a page, on any instance and any
worker, is answered by at most one upstream read per cache period, and an action taken on one instance
is what every other instance shows next.

Everything runs for real on loopback: redis-server (tests/redis_server.py; installed from Debian's
package when missing and running as root), the emulator as the upstream (its counters are the proof),
and gunicorn with the production settings (``dashboard.settings``, ``REDIS_URL`` set). tests/test_cache.py
covers the same logic within one process with the local-memory cache.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
import redis

from emulator import EmulatorServer
from tests.helpers import EMULATOR_KEY, HTMX
from tests.redis_server import run_redis
from tests.servers import dashboard_env, run_gunicorn

CACHE_SECONDS = 5.0  # long enough that a burst fits in one period, so "at most one read" means one
VIEWERS = 40
LIST_ROUTE = "GET /v1/batches"
BATCH_ROUTE = "GET /v1/batches/{id}"
CANCEL_ROUTE = "POST /v1/batches/{id}/cancel"


class Instances:
    def __init__(self, emulator: EmulatorServer, redis_url: str, a: str, b: str) -> None:
        self.emulator = emulator
        self.redis_url = redis_url
        self.a = httpx.Client(base_url=a, timeout=20, limits=httpx.Limits(max_connections=VIEWERS))
        self.b = httpx.Client(base_url=b, timeout=20, limits=httpx.Limits(max_connections=VIEWERS))

    def fresh_start(self) -> None:
        """Empty the shared cache and the emulator's counters (the servers live for the module)."""
        with redis.Redis.from_url(self.redis_url) as client:
            client.flushdb()
        self.emulator.state.clear_faults()
        self.emulator.state.reset_counts()

    def close(self) -> None:
        self.a.close()
        self.b.close()


@pytest.fixture(scope="module")
def instances(tmp_path_factory):
    work = tmp_path_factory.mktemp("cache-redis")
    with ExitStack() as stack:
        redis_url = stack.enter_context(run_redis(work))
        emulator = EmulatorServer(host="127.0.0.1", port=0, api_key=EMULATOR_KEY, speed=1.0, seed=True)
        emulator.start()
        stack.callback(emulator.stop)
        env = dashboard_env(
            work,
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            DJANGO_STATIC_ROOT=str(work / "static"),
            DASHBOARD_AUTH="none",
            OPENAI_BASE_URL=emulator.base_url,
            OPENAI_API_KEY=EMULATOR_KEY,
            REDIS_URL=redis_url,
            DASHBOARD_CACHE_SECONDS=str(CACHE_SECONDS),
            # This is about coalescing: on a loaded machine 40 viewers of a 0.5 s read may wait longer than
            # the bulkhead's 2 s before it judges the upstream hung (tests/test_breaker.py tests that).
            DASHBOARD_UPSTREAM_SLOW_SECONDS="10",
        )
        # Two instances on one database and one Redis, as behind a load balancer; 2 workers each.
        a = stack.enter_context(run_gunicorn(env, "--workers", "2"))
        b = stack.enter_context(run_gunicorn(env, "--workers", "2"))
        servers = Instances(emulator, redis_url, a, b)
        stack.callback(servers.close)
        yield servers


def _burst(servers: Instances, url: str) -> tuple[list[httpx.Response], float]:
    """VIEWERS requests for ``url`` at once, alternating instances (every third as an htmx poll)."""
    start = threading.Barrier(VIEWERS)

    def view(i: int) -> httpx.Response:
        client = servers.a if i % 2 == 0 else servers.b
        headers = HTMX if i % 3 == 0 else {}
        start.wait()
        return client.get(url, headers=headers)

    began = time.monotonic()
    with ThreadPoolExecutor(max_workers=VIEWERS) as pool:
        responses = list(pool.map(view, range(VIEWERS)))
    return responses, time.monotonic() - began


def _reads_allowed(elapsed: float) -> int:
    """At most one upstream read per cache period the burst spanned."""
    return 1 + int(elapsed // CACHE_SECONDS)


def _row(html: str, batch_id: str) -> str:
    match = re.search(rf'<tr id="row-{re.escape(batch_id)}".*?</tr>', html, re.DOTALL)
    assert match, f"no row for {batch_id} on the list page"
    return match.group(0)


def test_forty_viewers_of_one_batch_across_two_instances_cause_one_upstream_read(instances):
    instances.fresh_start()
    batch = instances.emulator.state.add_batch(status="in_progress", request_counts={"total": 10, "completed": 3, "failed": 0})
    # A slow first answer keeps the read in flight while the other 39 viewers arrive on 4 processes.
    instances.emulator.state.inject_fault(route=BATCH_ROUTE, delay=0.5, times=1)

    responses, elapsed = _burst(instances, f"/projects/default/batches/{batch['id']}/")

    assert [r.status_code for r in responses] == [200] * VIEWERS
    assert all(batch["id"] in r.text and "status-in_progress" in r.text for r in responses)
    counts = dict(instances.emulator.state.counts)
    assert set(counts) == {BATCH_ROUTE}
    assert 1 <= counts[BATCH_ROUTE] <= _reads_allowed(elapsed), f"{counts} in a {elapsed:.2f}s burst"


def test_forty_viewers_of_the_list_across_two_instances_cause_one_upstream_read(instances):
    instances.fresh_start()
    batch = instances.emulator.state.add_batch(status="in_progress", created_at=int(time.time()) + 3600)
    instances.emulator.state.inject_fault(route=LIST_ROUTE, delay=0.5, times=1)

    responses, elapsed = _burst(instances, "/projects/default/batches/")

    assert [r.status_code for r in responses] == [200] * VIEWERS
    assert all(f'id="row-{batch["id"]}"' in r.text for r in responses)
    assert "<html" in responses[1].text and "<html" not in responses[0].text  # full pages and htmx partials
    counts = dict(instances.emulator.state.counts)
    assert set(counts) == {LIST_ROUTE}
    assert 1 <= counts[LIST_ROUTE] <= _reads_allowed(elapsed), f"{counts} in a {elapsed:.2f}s burst"


def test_a_cancel_through_one_instance_is_what_the_other_instance_shows_next(instances):
    instances.fresh_start()
    batch_id = instances.emulator.state.add_batch(status="in_progress", created_at=int(time.time()) + 3600)["id"]
    detail = f"/projects/default/batches/{batch_id}/"

    # Instance B's viewers have the batch and the list cached, as "in progress".
    assert "status-in_progress" in instances.b.get(detail).text
    assert "status-in_progress" in _row(instances.b.get("/projects/default/batches/").text, batch_id)
    # Instance A's workers share that cache: opening the batch there reads nothing upstream.
    page = instances.a.get(detail)
    assert dict(instances.emulator.state.counts) == {BATCH_ROUTE: 1, LIST_ROUTE: 1}

    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    cancel = instances.a.post(f"/projects/default/batches/{batch_id}/cancel/", data={"csrfmiddlewaretoken": token})
    assert cancel.status_code == 302
    assert instances.emulator.state.get_batch(batch_id)["status"] == "cancelling"

    # Right away, well within the cache period, instance B shows the cancel: the batch the cancel
    # returned (no upstream read needed) and a freshly read list.
    after = instances.b.get(detail, headers=HTMX)
    assert "status-cancelling" in after.text and "status-in_progress" not in after.text
    assert "status-cancelling" in _row(instances.b.get("/projects/default/batches/").text, batch_id)
    assert dict(instances.emulator.state.counts) == {BATCH_ROUTE: 1, LIST_ROUTE: 2, CANCEL_ROUTE: 1}
