"""Issue #23 item 3: a hung upstream does not stall the dashboard. A per-project breaker opens after a
few timeouts and then answers at once; the index stands in for the list and a batch's page; page reads
have a short deadline; a bulkhead keeps most threads free while the upstream hangs.

The upstream is the real emulator on loopback, frozen with its fault injection (a delay longer than
the page deadline); the deadlines are made small through settings, so nothing here sleeps on purpose."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.db import connections
from django.test import Client

from batches.index.store import upsert_batches
from batches.upstream import Batch, UpstreamTimeout
from batches.upstream.breaker import Breaker, UpstreamNotAnswering, breaker_for, clamp, page_read
from find_factory import synced

BATCH_ROUTE = "GET /v1/batches/{id}"
LIST_ROUTE = "GET /v1/batches"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def quick(settings):
    """Deadlines small enough for a test: page reads 0.3 s, two timeouts open the breaker for 30 s."""
    settings.OPENAI_TIMEOUT = 30  # far above the page deadline, so a page that waits it out is caught
    settings.DASHBOARD_PAGE_READ_SECONDS = 0.3
    settings.DASHBOARD_BREAKER_TIMEOUTS = 2
    settings.DASHBOARD_BREAKER_OPEN_SECONDS = 30
    settings.DASHBOARD_UPSTREAM_PAGE_SLOTS = 1
    settings.DASHBOARD_UPSTREAM_SLOW_SECONDS = 0.1
    settings.DASHBOARD_CACHE_SECONDS = 0


@pytest.fixture
def frozen(upstream, quick):
    """The emulator answers nothing about batches for 2 s (longer than any page deadline here)."""
    for route in (BATCH_ROUTE, LIST_ROUTE):
        upstream.state.inject_fault(route=route, delay=2.0, times=None)
    yield upstream
    upstream.state.clear_faults()


def index_seeded(emulator, project: str = "default") -> list[dict]:
    batches = emulator.state.list_batches()
    upsert_batches(project, [Batch.from_api(b) for b in batches])
    synced(project)
    return batches


def timed(client: Client, url: str, **kwargs):
    started = time.monotonic()
    response = client.get(url, **kwargs)
    return response, time.monotonic() - started


# -- the breaker itself --------------------------------------------------------------------------------


def test_the_breaker_opens_after_the_set_number_of_timeouts_and_refuses_at_once(settings):
    settings.DASHBOARD_BREAKER_TIMEOUTS = 3
    settings.DASHBOARD_BREAKER_OPEN_SECONDS = 30
    breaker = Breaker("p", clock=Clock())
    for _ in range(2):
        assert breaker.admit() is False
        breaker.record(True, False)
    assert not breaker.is_open
    breaker.record(False, False)  # an answer in between starts the count again
    for _ in range(3):
        breaker.admit()
        breaker.record(True, False)
    assert breaker.is_open
    with pytest.raises(UpstreamNotAnswering) as refused:
        breaker.admit()
    assert str(refused.value) == (
        "The Batch API is not answering: 3 requests in a row timed out, so the dashboard is not asking it again for 30 s."
    )
    assert refused.value.http_status == 503 and refused.value.retry_after_header == "30"


def test_after_the_pause_one_probe_goes_through_and_its_answer_closes_the_breaker(settings):
    settings.DASHBOARD_BREAKER_TIMEOUTS = 1
    settings.DASHBOARD_BREAKER_OPEN_SECONDS = 30
    clock = Clock()
    breaker = Breaker("p", clock=clock)
    breaker.admit()
    breaker.record(True, False)
    clock.now += 31
    assert breaker.admit() is True  # the probe
    with pytest.raises(UpstreamNotAnswering):
        breaker.admit()  # only one probe at a time
    breaker.record(False, True)
    assert not breaker.is_open and breaker.admit() is False


def test_the_breakers_openings_refusals_and_closings_are_counted_for_metrics(settings):
    from prometheus_client import REGISTRY

    def counted(event: str) -> float:
        return REGISTRY.get_sample_value("dashboard_upstream_breaker_total", {"project": "m", "event": event}) or 0.0

    settings.DASHBOARD_BREAKER_TIMEOUTS = 1
    before = {event: counted(event) for event in ("opened", "refused", "closed")}
    clock = Clock()
    breaker = Breaker("m", clock=clock)
    breaker.admit()
    breaker.record(True, False)  # opens
    for _ in range(2):
        with pytest.raises(UpstreamNotAnswering):
            breaker.admit()  # refused
    clock.now += 60
    breaker.record(False, breaker.admit())  # the probe is answered: closed
    assert {event: counted(event) - before[event] for event in before} == {"opened": 1, "refused": 2, "closed": 1}


def test_a_probe_that_times_out_opens_the_breaker_again_at_once(settings):
    settings.DASHBOARD_BREAKER_TIMEOUTS = 3
    settings.DASHBOARD_BREAKER_OPEN_SECONDS = 30
    clock = Clock()
    breaker = Breaker("p", clock=clock)
    for _ in range(3):
        breaker.admit()
        breaker.record(True, False)
    clock.now += 31
    assert breaker.admit() is True
    breaker.record(True, True)
    with pytest.raises(UpstreamNotAnswering):
        breaker.admit()


def test_the_breaker_is_shared_by_every_thread_of_the_process(settings):
    settings.DASHBOARD_BREAKER_TIMEOUTS = 8
    breaker = breaker_for("threads")

    def time_out():
        breaker.admit()
        breaker.record(True, False)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: time_out(), range(8)))
    assert breaker_for("threads") is breaker and breaker.is_open


def test_only_page_reads_get_the_short_deadline(settings):
    settings.DASHBOARD_PAGE_READ_SECONDS = 2.0
    default = httpx.Timeout(15.0, connect=5.0)
    assert clamp({}, default) == {}  # the sync and the worker keep the client's timeouts
    with page_read("deadline"):
        timeout = clamp({}, default)["timeout"]
        assert 1.9 < timeout.read <= 2.0 and 1.9 < timeout.connect <= 2.0
        assert clamp({"timeout": 600}, default) == {"timeout": 600}  # a transfer chose its own


# -- against the frozen emulator -----------------------------------------------------------------------


@pytest.mark.django_db
def test_a_frozen_upstream_opens_the_breaker_and_the_batch_page_answers_at_once_from_the_index(client, frozen):
    batches = index_seeded(frozen)
    batch_id = next(b["id"] for b in batches if b["status"] == "in_progress")
    url = f"/projects/default/batches/{batch_id}/"
    for _ in range(2):  # each waits out the 0.3 s page deadline, not the 30 s read timeout
        response, took = timed(client, url)
        assert response.status_code == 200 and took < 15
        assert "did not answer the batch lookup in time" in response.content.decode()
    before = frozen.state.counts.get(BATCH_ROUTE, 0)
    response, took = timed(client, url)
    body = response.content.decode()
    assert response.status_code == 200 and took < 0.5
    assert frozen.state.counts.get(BATCH_ROUTE, 0) == before  # nothing was sent upstream
    assert "The Batch API is not answering: 2 requests in a row timed out" in body
    assert "This is the batch as the dashboard&#x27;s index last saw it (as of" in body
    assert f'<h1 class="batch-title">Batch <code>{batch_id}</code></h1>' in body


@pytest.mark.django_db
def test_with_the_breaker_open_a_batch_the_index_lacks_gets_the_not_answering_page(client, frozen):
    index_seeded(frozen)
    for _ in range(2):
        client.get("/projects/default/batches/batch_unknown1/")
    response, took = timed(client, "/projects/default/batches/batch_unknown2/")
    body = response.content.decode()
    assert response.status_code == 503 and took < 0.5
    assert response["Retry-After"] == "30"
    assert "The Batch API is not answering" in body and "the dashboard stops asking it for a short while" in body.lower()


@pytest.mark.django_db
def test_with_the_breaker_open_the_list_comes_from_the_index_and_keeps_polling(client, frozen):
    batches = index_seeded(frozen)
    for _ in range(2):
        client.get("/projects/default/batches/")
    response, took = timed(client, "/projects/default/batches/?limit=10")
    body = response.content.decode()
    assert response.status_code == 200 and took < 0.5
    assert "The list below comes from the dashboard&#x27;s index" in body
    newest = sorted(batches, key=lambda b: (b["created_at"], b["id"]), reverse=True)[:10]
    for batch in newest:
        assert f'id="row-{batch["id"]}"' in body
    assert 'hx-trigger="every' in body  # polls, so it turns live again when the API answers


@pytest.mark.django_db
def test_an_http_error_status_is_an_answer_and_is_shown_as_it_is(client, upstream, quick):
    index_seeded(upstream)
    upstream.state.inject_fault(route=LIST_ROUTE, status=503, times=None)
    response = client.get("/projects/default/batches/")
    assert response.status_code == 503
    assert "comes from the dashboard" not in response.content.decode()
    assert not breaker_for("default").is_open


def view_while_another_holds(holder_url: str, url: str):
    """Open ``url`` while a first view of ``holder_url`` (in its own thread, with its own database
    connection) holds the project's place on a hung upstream; the second view's response and time."""

    def hang() -> None:
        try:
            Client().get(holder_url)
        finally:
            connections.close_all()  # this thread's own database connection

    first = threading.Thread(target=hang)
    first.start()
    try:
        deadline = time.monotonic() + 2
        while not breaker_for("default").holders and time.monotonic() < deadline:
            time.sleep(0.01)
        return timed(Client(), url)
    finally:
        first.join()


@pytest.mark.django_db(transaction=True)
def test_while_one_view_waits_on_a_hung_upstream_the_next_is_answered_at_once(frozen, settings):
    """The bulkhead: one place per project (in this test); a second view of the hung project does not
    wait for a place (however long it may wait) but is answered from the index at once."""
    settings.DASHBOARD_UPSTREAM_SLOW_SECONDS = 5
    settings.DASHBOARD_PAGE_READ_SECONDS = 5  # the holder waits out the whole 2 s freeze
    batches = index_seeded(frozen)
    batch_id = batches[0]["id"]
    response, took = view_while_another_holds("/projects/default/batches/", f"/projects/default/batches/{batch_id}/")
    # "busy" is said only by a view refused without waiting for a place (the holder held it ~2 s).
    assert response.status_code == 200 and took < 2.0
    body = response.content.decode()
    assert "The Batch API is busy: 1 page views of this project are already waiting for it on this server." in body
    assert "This is the batch as the dashboard&#x27;s index last saw it" in body


@pytest.mark.django_db(transaction=True)
def test_a_viewer_waiting_for_another_views_hung_read_is_answered_from_the_index_once_it_looks_slow(frozen, settings):
    """Shared reads: a second view of the same hung page waits for the first one's read (not a second
    upstream call), but only DASHBOARD_UPSTREAM_SLOW_SECONDS; then, the index standing in, it answers
    from the index instead of holding its thread for the rest of the freeze."""
    settings.DASHBOARD_CACHE_SECONDS = 2  # identical reads are shared
    settings.DASHBOARD_UPSTREAM_PAGE_SLOTS = 4  # the bulkhead has room: only the shared read can hold it
    settings.DASHBOARD_UPSTREAM_SLOW_SECONDS = 0.2
    settings.DASHBOARD_PAGE_READ_SECONDS = 5  # the first view waits out the whole 2 s freeze
    index_seeded(frozen)
    response, took = view_while_another_holds("/projects/default/batches/", "/projects/default/batches/")
    assert response.status_code == 200 and 0.2 <= took < 1.5
    body = response.content.decode()
    assert "another view of this page has been waiting for it for 0.2 s or more on this server." in body
    assert frozen.state.counts.get(LIST_ROUTE, 0) == 1  # the second view asked nothing upstream


def test_a_timeout_from_the_client_counts_towards_opening(upstream, settings):
    from batches.upstream import BatchClient

    settings.DASHBOARD_BREAKER_TIMEOUTS = 2
    upstream.state.inject_fault(route=LIST_ROUTE, delay=1.0, times=2)
    client = BatchClient(base_url=upstream.base_url, api_key="sk-emulator-test", timeout=0.2, label="direct")
    for _ in range(2):
        with pytest.raises(UpstreamTimeout):
            client.list_batches()
    with pytest.raises(UpstreamNotAnswering):
        client.list_batches()
    assert upstream.state.counts.get(LIST_ROUTE, 0) == 2


def test_with_the_upstream_frozen_healthz_answers_at_once_from_a_real_gunicorn(tmp_path, frozen):
    """One gunicorn worker with 4 threads, 6 live views of a frozen project at once: the bulkhead lets two
    wait (for the 2 s page deadline), turns the rest away at once, and /healthz finds a free thread."""
    from tests.servers import dashboard_env, run_gunicorn

    env = dashboard_env(
        tmp_path, OPENAI_BASE_URL=frozen.base_url, OPENAI_API_KEY="sk-emulator-test", DASHBOARD_AUTH="none",
        DASHBOARD_PAGE_READ_SECONDS="2", DASHBOARD_UPSTREAM_PAGE_SLOTS="2", DASHBOARD_UPSTREAM_SLOW_SECONDS="0.2",
        DASHBOARD_CACHE_SECONDS="0",
    )
    with run_gunicorn(env) as base, httpx.Client(base_url=base, timeout=30) as probe:
        assert probe.get("/healthz").status_code == 200
        batch_ids = [b["id"] for b in frozen.state.list_batches()[:6]]

        def live(batch_id: str) -> int:
            with httpx.Client(base_url=base, timeout=30) as client:
                return client.get(f"/projects/default/batches/{batch_id}/").status_code

        with ThreadPoolExecutor(max_workers=6) as pool:
            views = [pool.submit(live, batch_id) for batch_id in batch_ids]
            deadline = time.monotonic() + 5
            while frozen.state.counts.get(BATCH_ROUTE, 0) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)  # two views are now waiting on the frozen upstream
            started = time.monotonic()
            assert probe.get("/healthz").status_code == 200
            healthz_took = time.monotonic() - started
            statuses = sorted(view.result() for view in views)
    assert healthz_took < 1.0
    assert statuses == [503, 503, 503, 503, 504, 504]  # four turned away at once, two timed out after 2 s
    assert frozen.state.counts.get(BATCH_ROUTE, 0) == 2


@pytest.mark.django_db(transaction=True)
def test_without_an_index_row_a_view_waits_for_a_place_then_is_turned_away_once_the_holder_looks_hung(frozen, settings):
    settings.DASHBOARD_UPSTREAM_SLOW_SECONDS = 0.2
    response, took = view_while_another_holds("/projects/default/batches/batch_notindexed1/",
                                              "/projects/default/batches/batch_notindexed2/")
    assert response.status_code == 503 and took < 0.6
    assert "The Batch API is slow to answer: 1 page views of this project have been waiting for it" in response.content.decode()
