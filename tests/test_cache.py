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
import time_machine
from django.core.cache import cache as django_cache
from django.test import Client
from prometheus_client import REGISTRY

from batches import cache as shared
from batches.upstream import UpstreamError, UpstreamUnavailable
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_ROUTE = "GET /v1/batches/{id}"
LIST_ROUTE = "GET /v1/batches"
VIEWERS = 12


def read(parts, loader):
    """A shared read of the project "default", as the selectors make one."""
    return shared.shared_read("default", parts, loader, errors=(UpstreamError,), wait_seconds=5.0)


def coalesced_reads() -> float:
    return REGISTRY.get_sample_value("dashboard_read_cache_total", {"project": "default", "outcome": "coalesced"}) or 0.0


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


def test_viewers_waiting_for_the_one_read_take_no_place_in_the_bulkhead(upstream, settings, running_batch):
    """One place per project, and a holder counts as slow at once: still every viewer of the slow page
    gets it, because only the viewer that asks the upstream holds the place."""
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    settings.DASHBOARD_UPSTREAM_PAGE_SLOTS = 1
    settings.DASHBOARD_UPSTREAM_SLOW_SECONDS = 0
    upstream.state.inject_fault(route=BATCH_ROUTE, delay=0.3, times=1)
    statuses = _concurrently(VIEWERS, f"/projects/default/batches/{running_batch}/")
    assert statuses == [200] * VIEWERS
    assert upstream.state.counts[BATCH_ROUTE] == 1


def test_concurrent_viewers_of_the_list_share_a_single_upstream_read(upstream, settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    upstream.state.inject_fault(route=LIST_ROUTE, delay=0.3, times=1)
    statuses = _concurrently(VIEWERS, "/projects/default/batches/?limit=10", htmx_every=3)
    assert statuses == [200] * VIEWERS
    assert upstream.state.counts[LIST_ROUTE] == 1


def test_polling_viewers_cause_one_upstream_read_per_cache_period(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 30.0
    url = f"/projects/default/batches/{running_batch}/"
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(3):
            assert client.get(url, headers=HTMX).status_code == 200
        assert upstream.state.counts[BATCH_ROUTE] == 1
        clock.shift(29)
        assert client.get(url, headers=HTMX).status_code == 200
        assert upstream.state.counts[BATCH_ROUTE] == 1
        clock.shift(2)
        for _ in range(3):
            assert client.get(url, headers=HTMX).status_code == 200
        assert upstream.state.counts[BATCH_ROUTE] == 2


def test_different_pages_are_not_shared(client, upstream, settings, running_batch):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    assert client.get("/projects/default/batches/?limit=10").status_code == 200
    assert client.get("/projects/default/batches/?limit=50").status_code == 200  # (limit=20 is the default: redirected)
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
    with time_machine.travel(time.time(), tick=False) as clock:
        assert client.get(url).status_code == 503
        assert client.get(url).status_code == 503
        assert upstream.state.counts[BATCH_ROUTE] == 3
        clock.shift(shared.ERROR_CACHE_SECONDS + 0.1)
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

    def other_process_answers():
        # Once our read is in flight (and so waits on the other process's lock), the other
        # process stores its answer; it still holds the lock, so ours can only take that answer.
        while key not in shared._flights:
            time.sleep(0)
        django_cache.set(key, ("ok", "their answer"), timeout=2)

    other = threading.Thread(target=other_process_answers)
    other.start()
    before = coalesced_reads()
    calls = []
    assert read(parts, lambda: calls.append(1) or "our answer") == "their answer"
    other.join()
    assert calls == [] and coalesced_reads() == before + 1


def test_a_read_takes_over_when_the_other_process_lets_its_lock_lapse_without_an_answer(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    parts = ("batch", "batch_crashed")
    key = shared.make_key("default", parts)
    assert django_cache.add(f"{key}:lock", 1, timeout=0.3)  # the holder died: its lock expires
    started = time.monotonic()
    assert read(parts, lambda: "ours") == "ours"
    assert 0.25 < time.monotonic() - started < 2.0
    assert django_cache.get(f"{key}:lock") is None


def test_waiters_read_for_themselves_when_the_leader_hits_a_bug(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    parts = ("batch", "batch_buggy")
    key = shared.make_key("default", parts)
    gate = threading.Event()
    calls = []

    def loader():
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            gate.wait(5)
            raise RuntimeError("a bug, not an upstream error")
        return "fine"

    outcomes = {}

    def view(name):
        try:
            outcomes[name] = read(parts, loader)
        except RuntimeError:
            outcomes[name] = "bug"

    leader = threading.Thread(target=view, args=("leader",), name="leader")
    leader.start()
    while not calls:  # the leader is reading
        time.sleep(0)
    waiter = threading.Thread(target=view, args=("waiter",), name="waiter")
    waiter.start()
    while shared._flights[key].followers < 1:  # the waiter waits for the leader's answer
        time.sleep(0)
    gate.set()
    leader.join(5)
    waiter.join(5)
    assert outcomes == {"leader": "bug", "waiter": "fine"}
    assert calls == ["leader", "waiter"]
    assert django_cache.get(key) is None  # the bug was not cached


def test_each_waiter_gets_its_own_copy_of_a_shared_error(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    err = UpstreamUnavailable("down", status_code=503, request_id="req_1")
    raised = []
    for _ in range(2):
        try:
            read(("batch", "batch_down"), lambda: (_ for _ in ()).throw(err))
        except UpstreamUnavailable as caught:
            raised.append(caught)
    assert raised[0] is not raised[1]
    assert [(e.message, e.status_code, e.request_id) for e in raised] == [("down", 503, "req_1")] * 2


def test_invalidation_moves_every_key_to_a_new_generation(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    before = shared.make_key("default", ("list", "", 20))
    shared.invalidate("default")
    assert shared.make_key("default", ("list", "", 20)) != before


# -- the other stores of the one helper ----------------------------------------------------------------


def test_a_shared_value_is_made_once_per_key_until_it_ages_out():
    made = []
    with time_machine.travel(time.time(), tick=False) as clock:
        assert shared.shared_value("test:counts:gen-1", lambda: made.append(1) or {"a": 1}, seconds=10) == {"a": 1}
        assert shared.shared_value("test:counts:gen-1", lambda: made.append(1) or {"a": 2}, seconds=10) == {"a": 1}
        assert shared.shared_value("test:counts:gen-2", lambda: made.append(1) or {"a": 3}, seconds=10) == {"a": 3}
        clock.shift(11)
        assert shared.shared_value("test:counts:gen-1", lambda: made.append(1) or {"a": 4}, seconds=10) == {"a": 4}
    assert len(made) == 3


def test_a_shared_value_with_no_time_to_live_is_made_every_time():
    made = []
    for _ in range(2):
        shared.shared_value("test:uncached", lambda: made.append(1) or 1, seconds=0)
    assert made == [1, 1] and django_cache.get("test:uncached") is None


def test_the_local_cache_keeps_the_most_recently_used_entries():
    local = shared.LocalCache(maxsize=2)
    local.put("a", 1)
    local.put("b", 2)
    assert local.get("a") == 1  # "a" is now the most recently used
    local.put("c", 3)
    assert (local.get("a"), local.get("b"), local.get("c"), len(local)) == (1, None, 3, 2)
    assert local.get_or_make("d", lambda: 4) == 4 and local.get_or_make("d", lambda: 5) == 4
    local.clear()
    assert len(local) == 0


def test_what_the_local_cache_fails_to_make_is_not_kept():
    local = shared.LocalCache(maxsize=2)

    def broken():
        raise ValueError("cannot read it")

    with pytest.raises(ValueError):
        local.get_or_make("x", broken)
    assert local.get("x") is None and len(local) == 0


def test_the_local_cache_keeps_a_made_none_too():
    local = shared.LocalCache(maxsize=2)
    made = []
    assert local.get_or_make("nothing", lambda: made.append(1)) is None
    assert local.get_or_make("nothing", lambda: made.append(1)) is None
    assert made == [1] and len(local) == 1


def test_a_process_keeps_what_it_read_unpickled_until_the_shared_entry_expires_or_the_generation_moves(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    parts = ("list", "", 100)
    calls = []
    with time_machine.travel(1_900_000_000, tick=False) as clock:
        first = read(parts, lambda: calls.append(1) or {"page": ["a", "b"]})
        # The same object, not a copy unpickled from Django's cache: nothing is decoded again.
        assert read(parts, lambda: calls.append(1) or {"page": "other"}) is first
        clock.shift(2.5)  # the shared entry has expired: so has the kept one
        assert read(parts, lambda: calls.append(1) or {"page": ["c"]}) == {"page": ["c"]}
        shared.invalidate("default")  # a create or cancel anywhere: every process reads afresh
        assert read(parts, lambda: calls.append(1) or {"page": ["d"]}) == {"page": ["d"]}
    assert calls == [1, 1, 1]


def test_a_shared_cache_that_lost_its_generation_starts_a_new_one_never_the_old_keys(settings):
    settings.DASHBOARD_CACHE_SECONDS = 2.0
    before = shared.make_key("default", ("batch", "b1"))
    django_cache.clear()  # a flush or a restart of the shared cache
    assert shared.make_key("default", ("batch", "b1")) != before
