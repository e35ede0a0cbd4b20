"""Shared reads: N concurrent viewers of one page cause at most one upstream read per cache period.

Viewers are threads driving Django's test client against the real emulator over loopback; the
emulator counts what reaches it. The cross-process lock is exercised through the same cache backend
another process would share (the lock and the value are plain cache entries).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache as django_cache
from django.test import Client

from batches import cache as shared
from batches.upstream import UpstreamUnavailable
from tests.conftest import HTMX

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_ROUTE = "GET /v1/batches/{id}"
LIST_ROUTE = "GET /v1/batches"
VIEWERS = 12


def _concurrently(n: int, url: str, *, htmx_every: int = 0) -> list[int]:
    """Open ``url`` from ``n`` viewers at once (each its own client); return their status codes."""
    start = threading.Barrier(n)

    def view(i: int) -> int:
        client = Client()
        headers = HTMX if htmx_every and i % htmx_every == 0 else {}
        start.wait()
        return client.get(url, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(view, range(n)))


def test_concurrent_viewers_of_one_batch_share_a_single_upstream_read(upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    # A slow upstream answer makes sure the viewers really overlap while the read is in flight.
    upstream.state.inject_fault(route=BATCH_ROUTE, delay=0.3, times=1)
    statuses = _concurrently(VIEWERS, f"/projects/default/batches/{running_batch}/", htmx_every=2)
    assert statuses == [200] * VIEWERS
    assert upstream.state.counts[BATCH_ROUTE] == 1


def test_concurrent_viewers_of_the_list_share_a_single_upstream_read(upstream, settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    upstream.state.inject_fault(route=LIST_ROUTE, delay=0.3, times=1)
    statuses = _concurrently(VIEWERS, "/projects/default/batches/?limit=10", htmx_every=3)
    assert statuses == [200] * VIEWERS
    assert upstream.state.counts[LIST_ROUTE] == 1


def test_polling_viewers_cause_one_upstream_read_per_cache_period(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 0.4
    url = f"/projects/default/batches/{running_batch}/"
    for _ in range(3):
        assert client.get(url, headers=HTMX).status_code == 200
    assert upstream.state.counts[BATCH_ROUTE] == 1
    time.sleep(0.5)
    for _ in range(3):
        assert client.get(url, headers=HTMX).status_code == 200
    assert upstream.state.counts[BATCH_ROUTE] == 2


def test_different_pages_are_not_shared(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    client.get("/projects/default/batches/?limit=10")
    client.get("/projects/default/batches/?limit=20")
    client.get(f"/projects/default/batches/{running_batch}/")
    assert upstream.state.counts[LIST_ROUTE] == 2
    assert upstream.state.counts[BATCH_ROUTE] == 1


def test_a_cancel_always_goes_upstream_and_refreshes_the_batch_and_the_list(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 30.0
    url = f"/projects/default/batches/{running_batch}/"
    assert "in progress" in client.get(url).content.decode()
    client.get("/projects/default/batches/")
    client.post(f"/projects/default/batches/{running_batch}/cancel/")
    client.post(f"/projects/default/batches/{running_batch}/cancel/")
    assert upstream.state.counts["POST /v1/batches/{id}/cancel"] == 2

    detail = client.get(url).content.decode()
    assert "cancelling" in detail  # the cancel's own answer, not the cached "in progress"
    assert upstream.state.counts[BATCH_ROUTE] == 1  # ... and it needed no new read
    listing = client.get("/projects/default/batches/").content.decode()
    assert upstream.state.counts[LIST_ROUTE] == 2  # the cached list page was dropped
    assert "cancelling" in listing


def test_a_refused_cancel_drops_the_cached_batch_so_the_next_view_is_fresh(client, upstream, settings):
    settings.DASHBOARD_CACHE_SECONDS = 30.0
    done = upstream.state.add_batch(status="completed")
    client.get(f"/projects/default/batches/{done['id']}/")
    client.post(f"/projects/default/batches/{done['id']}/cancel/")  # 409
    client.get(f"/projects/default/batches/{done['id']}/")
    assert upstream.state.counts[BATCH_ROUTE] == 2


def test_concurrent_viewers_during_an_outage_share_one_failing_read(upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    upstream.state.inject_fault(route=BATCH_ROUTE, status=503, delay=0.2, times=None, headers={"retry-after-ms": "10"})
    statuses = _concurrently(VIEWERS, f"/projects/default/batches/{running_batch}/")
    assert statuses == [503] * VIEWERS
    assert upstream.state.counts[BATCH_ROUTE] == 3  # one read with its two retries, for all viewers


def test_an_error_is_remembered_for_at_most_a_second(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 30.0
    url = f"/projects/default/batches/{running_batch}/"
    upstream.state.inject_fault(route=BATCH_ROUTE, status=503, times=3, headers={"retry-after-ms": "10"})
    assert client.get(url).status_code == 503
    assert client.get(url).status_code == 503
    assert upstream.state.counts[BATCH_ROUTE] == 3
    time.sleep(shared.ERROR_CACHE_SECONDS + 0.1)
    assert client.get(url).status_code == 200  # recovered: the error was not kept for 30 s
    assert upstream.state.counts[BATCH_ROUTE] == 4


def test_sharing_is_off_when_the_cache_period_is_zero(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 0
    for _ in range(3):
        client.get(f"/projects/default/batches/{running_batch}/")
    assert upstream.state.counts[BATCH_ROUTE] == 3


# -- the coalescing machinery itself (no upstream needed) ---------------------------------------------


def test_a_read_waits_for_another_process_holding_the_lock_and_takes_its_answer(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    parts = ("batch", "batch_elsewhere")
    key = shared.make_key("default", parts)
    assert django_cache.add(f"{key}:lock", 1, timeout=5)  # "another process" is reading

    def other_process_finishes():
        time.sleep(0.2)
        django_cache.set(key, ("ok", "their answer"), timeout=2)
        django_cache.delete(f"{key}:lock")

    threading.Thread(target=other_process_finishes).start()
    calls = []
    assert shared.shared_read("default", parts, lambda: calls.append(1) or "our answer") == "their answer"
    assert calls == []


def test_a_read_takes_over_when_the_other_process_lets_its_lock_lapse_without_an_answer(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    parts = ("batch", "batch_crashed")
    key = shared.make_key("default", parts)
    assert django_cache.add(f"{key}:lock", 1, timeout=0.3)  # the holder died: its lock expires
    started = time.monotonic()
    assert shared.shared_read("default", parts, lambda: "ours") == "ours"
    assert 0.25 < time.monotonic() - started < 2.0
    assert django_cache.get(f"{key}:lock") is None


def test_waiters_read_for_themselves_when_the_leader_hits_a_bug(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    gate = threading.Event()
    calls = []

    def loader():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            gate.wait(1)
            raise RuntimeError("a bug, not an upstream error")
        return "fine"

    results = []

    def read():
        try:
            results.append(shared.shared_read("default", ("batch", "batch_buggy"), loader))
        except RuntimeError:
            results.append("bug")

    leader = threading.Thread(target=read)
    leader.start()
    time.sleep(0.05)
    waiter = threading.Thread(target=read)
    waiter.start()
    time.sleep(0.05)
    gate.set()
    leader.join(2)
    waiter.join(2)
    assert sorted(results) == ["bug", "fine"]
    assert django_cache.get(shared.make_key("default", ("batch", "batch_buggy"))) is None  # the bug was not cached


def test_each_waiter_gets_its_own_copy_of_a_shared_error(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    err = UpstreamUnavailable("down", status_code=503, request_id="req_1")
    raised = []
    for _ in range(2):
        try:
            shared.shared_read("default", ("batch", "batch_down"), lambda: (_ for _ in ()).throw(err))
        except UpstreamUnavailable as caught:
            raised.append(caught)
    assert raised[0] is not raised[1]
    assert [(e.message, e.status_code, e.request_id) for e in raised] == [("down", 503, "req_1")] * 2


def test_invalidation_moves_every_key_to_a_new_generation(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    before = shared.make_key("default", ("list", "", 20))
    shared.invalidate("default")
    assert shared.make_key("default", ("list", "", 20)) != before
