"""The sync keeps the index equal to what the Batch API lists, against the real emulator.

The emulator here runs with a frozen clock (speed 0): batches change only when a test cancels,
creates or advances time, so "the index equals the API" is an exact comparison. Pages are small
(10) so the 65 seeded batches span several pages.
"""

from __future__ import annotations

import io
import os
import signal
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from batches.index import lease
from batches.index.signals import batches_changed, sync_pass_finished
from batches.index.sync import sync_project
from batches.models import BatchRecord, BatchSample, SyncState
from batches.projects import get_project
from batches.upstream import TERMINAL_STATUSES, BatchClient
from tests.helpers import EMULATOR_KEY, at_once

PAGE = 10
LIST = "/v1/batches"
RETRIEVE = "/v1/batches/{id}"


@pytest.fixture
def frozen(own_emulator):
    """A seeded emulator whose clock moves only with ``state.advance``; settings point at it."""
    return own_emulator(speed=0.0)


@pytest.fixture
def project(frozen):
    return get_project("default")


@pytest.fixture
def client(frozen):
    """The project's client without real sleeps between retries and no retries: a fault is a fault."""
    c = BatchClient(base_url=frozen.base_url, api_key=EMULATOR_KEY, max_retries=0, sleep=lambda s: None)
    yield c
    c.close()


def api_view(server) -> dict[str, str]:
    return {b["id"]: b["status"] for b in server.state.list_batches()}


def api_order(server) -> list[str]:
    return [b["id"] for b in server.state.list_batches()]


def index_view() -> dict[str, str]:
    return dict(BatchRecord.objects.filter(project="default").values_list("batch_id", "status"))


def run(project, client, owner="a", **kwargs):
    kwargs.setdefault("page_size", PAGE)
    kwargs.setdefault("backfill_pages", None)
    return sync_project(project, owner, client=client, **kwargs)


def inject_before_page(server, page: int, **fault):
    """A ``should_stop`` hook that injects an upstream fault just before the pass's ``page``-th page."""
    seen = {"n": 0}

    def hook():
        seen["n"] += 1
        if seen["n"] == page:
            server.state.inject_fault(**fault)
        return False

    return hook


@pytest.mark.django_db
def test_backfill_indexes_exactly_what_the_api_lists(frozen, project, client):
    result = run(project, client)

    assert result.ok and result.backfill_done
    assert index_view() == api_view(frozen)
    assert result.backfill_pages == 7  # 65 batches, 10 a page
    state = SyncState.objects.get(project="default")
    assert state.backfill_done
    assert state.backfill_after == api_order(frozen)[-1]
    assert state.backfill_oldest_created_at == min(b["created_at"] for b in frozen.state.list_batches())
    assert state.last_pass_calls == 7 and state.last_success and state.last_error == ""
    # One sample per unfinished batch; finished ones seen for the first time get none.
    unfinished = {i for i, s in api_view(frozen).items() if s not in TERMINAL_STATUSES}
    assert set(BatchSample.objects.values_list("batch_id", flat=True)) == unfinished
    assert BatchSample.objects.count() == len(unfinished)
    # The row carries what the list said.
    some = frozen.state.list_batches()[3]
    record = BatchRecord.objects.get(batch_id=some["id"])
    assert record.created_at == some["created_at"] and record.raw["id"] == some["id"]


@pytest.mark.django_db
def test_a_pass_after_changes_brings_the_index_back_to_the_api(frozen, project, client):
    run(project, client)
    running = [i for i, s in api_view(frozen).items() if s == "in_progress"]
    for batch_id in running[:2]:
        client.cancel_batch(batch_id)
    upload = client.upload_file(io.BytesIO(b'{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"gpt-4o-mini","messages":[]}}\n'), "in.jsonl")
    created = [client.create_batch(input_file_id=upload.id, endpoint="/v1/chat/completions").id for _ in range(3)]
    frozen.state.advance(600)  # cancels settle, some runs finish, the new ones start
    before = index_view()
    expected = api_view(frozen)
    assert expected != before

    result = run(project, client)

    assert result.ok
    assert index_view() == expected
    assert set(created) <= set(index_view())
    # Not only statuses: every row carries the API's latest object (counts, timestamps).
    latest = {b["id"]: b for b in frozen.state.list_batches()}
    for record in BatchRecord.objects.all():
        assert record.raw == latest[record.batch_id]
        assert record.completed_requests == latest[record.batch_id]["request_counts"]["completed"]
    # Every status that moved got a sample; terminal ones their final one.
    moved = {i for i in expected if i in before and before[i] != expected[i]}
    assert moved
    for batch_id in moved:
        last = BatchSample.objects.filter(batch_id=batch_id).latest("taken_at")
        assert last.status == expected[batch_id]
    assert result.changed == len(moved)


@pytest.mark.django_db
def test_a_refresh_pass_lists_only_until_the_oldest_unfinished_batch(frozen, project, client):
    run(project, client)
    order = api_order(frozen)
    statuses = api_view(frozen)
    oldest_unfinished = max(i for i, batch_id in enumerate(order) if statuses[batch_id] not in TERMINAL_STATUSES)
    frozen.state.reset_counts()

    result = run(project, client)

    expected_pages = oldest_unfinished // PAGE + 1
    assert result.refresh_pages == expected_pages < 7
    assert result.stragglers == 0 and result.backfill_pages == 0
    assert result.calls == frozen.state.total_requests() == expected_pages
    assert SyncState.objects.get(project="default").last_pass_calls == expected_pages


@pytest.mark.django_db
def test_unfinished_batches_below_the_page_cap_are_retrieved_one_by_one(frozen, project, client, settings):
    settings.DASHBOARD_SYNC_REFRESH_PAGES = 1
    settings.DASHBOARD_SYNC_STRAGGLERS = 50
    run(project, client)
    first_page = set(api_order(frozen)[:PAGE])
    stragglers = {i for i, s in api_view(frozen).items() if s not in TERMINAL_STATUSES and i not in first_page}
    assert stragglers
    frozen.state.advance(3600)
    frozen.state.reset_counts()

    result = run(project, client)

    assert result.refresh_pages == 1 and result.stragglers == len(stragglers)
    assert frozen.state.counts[f"GET {RETRIEVE}"] == len(stragglers)
    assert {i: index_view()[i] for i in stragglers} == {i: api_view(frozen)[i] for i in stragglers}


@pytest.mark.django_db
def test_a_burst_of_new_batches_is_indexed_in_one_pass_whatever_the_page_cap(frozen, project, client, settings):
    settings.DASHBOARD_SYNC_REFRESH_PAGES = 1
    run(project, client)
    frozen.state.advance(10)
    burst = {frozen.state.add_batch(status="completed")["id"] for _ in range(25)}

    result = run(project, client)

    assert burst <= set(index_view())
    assert result.refresh_pages == 3  # 25 new: page 3 holds the last 5 of them and reaches the known part
    assert index_view() == api_view(frozen)


@pytest.mark.django_db
def test_a_crash_mid_backfill_resumes_where_it_stopped(frozen, project, client):
    # The upstream fails on the 4th page: three pages are indexed, the cursor stands after them.
    result = run(project, client, should_stop=inject_before_page(frozen, 4, route=LIST, method="GET", status=500, times=5))

    assert not result.ok and result.error
    order = api_order(frozen)
    assert set(index_view()) == set(order[:30])
    state = SyncState.objects.get(project="default")
    assert state.backfill_after == order[29] and not state.backfill_done
    assert state.last_error and state.last_success is None

    # The instance died holding its lease; a new one takes over once it expired, and resumes.
    frozen.state.clear_faults()
    SyncState.objects.filter(project="default").update(lease_expires=timezone.now() - timedelta(seconds=1))
    resumed = run(project, client, owner="b")

    assert resumed.ok and resumed.backfill_done
    assert resumed.backfill_pages == 4  # 35 left: pages 4..7, not a restart from the top
    assert index_view() == api_view(frozen)


@pytest.mark.django_db
def test_a_fault_mid_pass_leaves_what_was_indexed_untouched(frozen, project, client):
    run(project, client)
    snapshot = {r.batch_id: (r.status, r.last_synced, r.completed_requests) for r in BatchRecord.objects.all()}
    state_before = SyncState.objects.values("backfill_after", "backfill_done", "last_success").get(project="default")
    frozen.state.advance(3600)  # plenty changes upstream

    # Refresh page 1 goes through; page 2 fails.
    result = run(project, client, should_stop=inject_before_page(frozen, 2, route=LIST, method="GET", status=503, times=5))

    assert result.error and result.refresh_pages == 1
    after = {r.batch_id: (r.status, r.last_synced, r.completed_requests) for r in BatchRecord.objects.all()}
    assert set(after) == set(snapshot)  # nothing deleted
    page_one = set(api_order(frozen)[:PAGE])
    for batch_id, values in after.items():
        if batch_id not in page_one:
            assert values == snapshot[batch_id]  # nothing rewound or half-written
    state = SyncState.objects.values("backfill_after", "backfill_done", "last_success", "last_error").get(project="default")
    assert state["backfill_after"] == state_before["backfill_after"] and state["backfill_done"]
    assert state["last_success"] == state_before["last_success"] and state["last_error"]


@pytest.mark.django_db
def test_a_fault_while_retrieving_stragglers_keeps_the_ones_retrieved(frozen, project, client, settings):
    settings.DASHBOARD_SYNC_REFRESH_PAGES = 1
    run(project, client)
    frozen.state.advance(3600)
    frozen.state.inject_fault(route=RETRIEVE, method="GET", status=500, times=1)

    result = run(project, client)

    assert result.error and result.stragglers == 0
    assert len(index_view()) == 65


@pytest.mark.django_db
def test_two_syncers_at_once_one_works_the_other_skips(frozen, project, client):
    other = {}

    def second_instance_starts():
        if not other:
            frozen.state.reset_counts()
            other["result"] = run(project, client, owner="b")
            other["calls"] = frozen.state.total_requests()
        return False

    first = run(project, client, owner="a", should_stop=second_instance_starts)

    assert first.ok and first.backfill_done
    assert other["result"].skipped and other["calls"] == 0
    assert SyncState.objects.get(project="default").lease_owner == "a"
    assert run(project, client, owner="b").skipped  # still a's until it stops or its lease expires
    assert index_view() == api_view(frozen)


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over_and_its_old_holder_stops():
    assert lease.claim("default", "a")
    assert not lease.claim("default", "b")
    SyncState.objects.filter(project="default").update(lease_expires=timezone.now() - timedelta(seconds=1))

    assert lease.claim("default", "b")
    with pytest.raises(lease.LeaseLost):
        lease.renew("default", "a")
    assert sync_project(get_project("default"), "a").skipped


@pytest.mark.django_db
def test_a_lost_lease_rolls_back_the_page_being_written(frozen, project, client):
    def taken_over_after_first_page():
        if BatchRecord.objects.exists():
            SyncState.objects.filter(project="default").update(lease_owner="b")
        return False

    result = run(project, client, owner="a", should_stop=taken_over_after_first_page)

    assert "another instance" in result.error
    assert len(index_view()) == PAGE  # page 2 was listed but not written
    assert SyncState.objects.get(project="default").backfill_after == api_order(frozen)[PAGE - 1]


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_give_the_lease_to_exactly_one():
    lease.sync_state("default")
    claimed = at_once(lambda name: lease.claim("default", name), [f"i{n}" for n in range(6)])
    wins = [name for name, won in claimed.items() if won]
    assert len(wins) == 1
    assert SyncState.objects.get(project="default").lease_owner == wins[0]


@pytest.mark.django_db(transaction=True)
def test_status_changes_are_signalled_after_commit(frozen, project, client):
    run(project, client)
    running = next(i for i, s in api_view(frozen).items() if s == "in_progress")
    client.cancel_batch(running)
    received = []

    def receiver(sender, project, changes, **kwargs):
        received.append((sender, project, changes))

    batches_changed.connect(receiver)
    try:
        run(project, client)
    finally:
        batches_changed.disconnect(receiver)

    assert [(s, p) for s, p, _ in received] == [("sync", "default")]
    assert received[0][2][running] == ("in_progress", "cancelling")


@pytest.mark.django_db
def test_sync_batches_once_backfills_to_the_end_and_releases_its_lease(frozen, monkeypatch):
    monkeypatch.setattr("batches.management.commands.sync_batches.PAGE_SIZE", PAGE)
    out = io.StringIO()

    call_command("sync_batches", "--once", "--project", "default", stdout=out)

    assert index_view() == api_view(frozen)
    assert "project default: ok; 7 upstream call(s)" in out.getvalue()
    assert SyncState.objects.get(project="default").lease_owner == ""


@pytest.mark.django_db
def test_sync_batches_once_fails_with_the_reason_when_upstream_refuses(frozen):
    frozen.state.inject_fault(route=LIST, status=401, times=1)
    with pytest.raises(CommandError, match="default"):
        call_command("sync_batches", "--once", stdout=io.StringIO())
    assert SyncState.objects.get(project="default").last_error


@pytest.mark.django_db
def test_sync_batches_refuses_an_unknown_project():
    with pytest.raises(CommandError, match="no project 'nope'"):
        call_command("sync_batches", "--once", "--project", "nope")


@pytest.mark.django_db(transaction=True)
def test_the_loop_survives_an_upstream_fault_and_stops_on_sigterm(frozen, monkeypatch, caplog):
    """Pass 1 meets a 401, pass 2 resumes; the first batch it indexes sends SIGTERM to this process,
    and the loop stops after that page, releases the lease and restores the signal handlers."""
    monkeypatch.setattr("batches.management.commands.sync_batches.PAGE_SIZE", PAGE)
    frozen.state.inject_fault(route=LIST, status=401, times=1)
    handler_before = signal.getsignal(signal.SIGTERM)

    def stop_me(sender, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)

    batches_changed.connect(stop_me)
    try:
        call_command("sync_batches", "--interval", "0", stdout=io.StringIO())
    finally:
        batches_changed.disconnect(stop_me)

    assert signal.getsignal(signal.SIGTERM) is handler_before
    assert any("stopped after 1 upstream call(s)" in r.getMessage() for r in caplog.records)
    state = SyncState.objects.get(project="default")
    assert state.lease_owner == "" and state.last_error == ""
    assert len(index_view()) == PAGE  # it stopped after the page that signalled, not at the end
    assert not state.backfill_done and state.backfill_after == api_order(frozen)[PAGE - 1]


@pytest.mark.django_db
def test_a_refresh_pass_keeps_within_its_call_budget_and_never_starves_stragglers(frozen, project, client, settings):
    """List pages come first; stragglers get what is left of DASHBOARD_SYNC_CALL_BUDGET, but at least
    one, so a batch older than the page cap is still looked at."""
    run(project, client)
    frozen.state.advance(60)
    settings.DASHBOARD_SYNC_REFRESH_PAGES = 1
    settings.DASHBOARD_SYNC_STRAGGLERS = 10
    settings.DASHBOARD_SYNC_CALL_BUDGET = 4
    result = run(project, client)
    assert result.ok and result.refresh_pages == 1 and result.stragglers == 3 and result.calls == 4
    settings.DASHBOARD_SYNC_CALL_BUDGET = 1  # the page used it all: still one straggler
    result = run(project, client)
    assert result.ok and result.refresh_pages == 1 and result.stragglers == 1 and result.calls == 2


@pytest.mark.django_db
def test_only_a_successful_pass_says_so_with_its_signal(frozen, project, client):
    heard = []

    def listener(sender, project, **kwargs):
        heard.append((sender, project))

    sync_pass_finished.connect(listener)
    try:
        assert run(project, client).ok
        assert heard == [("sync", "default")]
        frozen.state.inject_fault(route="GET /v1/batches", status=500, times=None)
        assert not run(project, client).ok
        assert heard == [("sync", "default")]
    finally:
        sync_pass_finished.disconnect(listener)
