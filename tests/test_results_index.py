"""The kept results join of a finished batch: built once (the three files read once), then every page,
filter and worker (or restart: the Django cache cleared) reads it from the database; the same rows and
outcomes as joining the files on the fly; one builder at a time."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone

from batch_files import BIG_TEXT, CHAT, INPUT_IDS, add_file, input_line, make_batch, ok
from batches import results
from batches.results import kept, records
from batches.results.page import PER_PAGE, page_from_files
from batches.models import ResultsJoin, ResultsJoinRow
from batches.projects import get_project
from batches.upstream import Batch

pytestmark = pytest.mark.django_db

READS = "GET /v1/files/{id}/content"


def as_batch(data: dict) -> Batch:
    return Batch.from_api(data)


def reads(emulator) -> int:
    return emulator.state.counts[READS]


def url(batch, **query):
    base = reverse("batches:results", args=["default", batch["id"]])
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def on_the_fly(project, batch, *, page=1, per_page=PER_PAGE, failed_only=False, custom_id=""):
    """The page as joining the files for this view alone computes it (the path of unfinished batches)."""
    return page_from_files(project, batch, page=page, per_page=per_page, failed_only=failed_only, custom_id=custom_id)


def test_the_join_is_built_once_and_then_serves_every_page_filter_and_worker(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    upstream.state.reset_counts()
    assert client.get(url(batch)).status_code == 200
    assert reads(upstream) == 3  # input, output and error, once each
    join = ResultsJoin.objects.get(batch_id=batch["id"])
    assert join.state == ResultsJoin.State.READY and join.total == 6 and join.build_seconds is not None
    assert ResultsJoinRow.objects.filter(join=join).count() == 6

    upstream.state.reset_counts()
    html = client.get(url(batch, page=1, filter="failed")).content.decode()
    assert "<code>b</code>" in html and "<code>a</code>" not in html
    assert reads(upstream) == 0
    cache.clear()  # another worker, or after a restart: nothing of it is in memory or the cache
    html = client.get(url(batch)).content.decode()
    assert "3 succeeded, 1 failed, 1 expired, 1 without a result" in html
    assert reads(upstream) == 0
    assert ResultsJoin.objects.count() == 1


@pytest.mark.parametrize("with_input", [True, False])
def test_the_kept_join_gives_the_same_pages_as_joining_the_files(upstream, tmp_path, with_input):
    project = get_project("default")
    batch = as_batch(make_batch(upstream, tmp_path, with_input=with_input))
    cases = [
        {"page": p, "per_page": n, "failed_only": f, "custom_id": c}
        for p in (1, 2, 3, 9)
        for n in (2, 4)
        for f in (False, True)
        for c in ("", "b", "x")
    ]
    for kwargs in cases:
        kept_page = results.results_page(project, batch, **kwargs)
        assert kept_page == on_the_fly(project, batch, **kwargs), kwargs
    assert ResultsJoin.objects.get().input_available is with_input


def test_rows_keep_outcomes_status_errors_and_the_long_body(upstream, tmp_path):
    project = get_project("default")
    batch = as_batch(make_batch(upstream, tmp_path))
    rows = {row.custom_id: row for row in results.results_page(project, batch).rows}
    assert [r.custom_id for r in results.results_page(project, batch).rows] == INPUT_IDS
    assert (rows["a"].outcome, rows["a"].status_code, rows["a"].input_line) == ("succeeded", 200, 1)
    assert (rows["b"].outcome, rows["b"].status_code, rows["b"].error_code, rows["b"].error_message) == (
        "failed", 400, "model_not_found", "Bad model <x>"
    )
    assert (rows["d"].outcome, rows["d"].error_code) == ("expired", "batch_expired")
    assert rows["f"] == records.ResultRow(custom_id="f", outcome="no result", input_line=6)
    big = rows["e"]
    assert big.body_truncated and not big.full_truncated
    assert len(big.body_preview) == records.PREVIEW_CHARS and BIG_TEXT.strip() in big.body_full


def test_a_body_longer_than_the_page_shows_is_still_marked_cut(upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(records, "FULL_BODY_CHARS", 3000)
    project = get_project("default")
    batch = as_batch(make_batch(upstream, tmp_path))
    row = next(r for r in results.results_page(project, batch).rows if r.custom_id == "e")
    assert row.full_truncated and len(row.body_full) == 3000
    assert row == next(r for r in on_the_fly(project, batch).rows if r.custom_id == "e")


def test_filters_failed_only_and_custom_id_prefix_case_sensitive(upstream, tmp_path):
    ids = ["Req-1", "req-1", "req-10", "req-2", "other", "req-3"]
    input_id = add_file(upstream, tmp_path, "in.jsonl", [input_line(i) for i in ids], "batch")
    out = [ok(i, "fine") for i in ("req-2", "Req-1", "req-10", "other")]
    err = [{"id": "x", "custom_id": "req-1", "response": {"status_code": 500, "body": {}}, "error": None}]
    data = upstream.state.add_batch(
        status="completed", endpoint=CHAT, input_file_id=input_id,
        output_file_id=add_file(upstream, tmp_path, "o.jsonl", [json.dumps(r) for r in out], "batch_output"),
        error_file_id=add_file(upstream, tmp_path, "e.jsonl", [json.dumps(r) for r in err], "batch_output"),
    )
    project, batch = get_project("default"), as_batch(data)
    page = results.results_page(project, batch, custom_id="req-1")
    assert [r.custom_id for r in page.rows] == ["req-1", "req-10"] and page.total == 2
    assert (page.succeeded, page.failed, page.not_run) == (4, 1, 1)  # counts stay the batch's
    page = results.results_page(project, batch, custom_id="req-", failed_only=True)
    assert [(r.custom_id, r.outcome) for r in page.rows] == [("req-1", "failed"), ("req-3", "no result")]
    page = results.results_page(project, batch, failed_only=True, per_page=1, page=2)
    assert [r.custom_id for r in page.rows] == ["req-3"] and (page.page, page.pages, page.total) == (2, 2, 2)
    assert results.results_page(project, batch, custom_id="REQ").rows == ()
    assert results.results_page(project, batch, custom_id="req-1%").rows == ()  # no LIKE wildcards


def test_an_unfinished_batch_is_not_kept(upstream, tmp_path):
    batch = as_batch(make_batch(upstream, tmp_path, status="in_progress"))
    page = results.results_page(get_project("default"), batch)
    assert [r.custom_id for r in page.rows] == INPUT_IDS
    assert not ResultsJoin.objects.exists()


def test_while_another_worker_builds_the_join_a_page_is_computed_without_building_it(upstream, tmp_path):
    project, data = get_project("default"), make_batch(upstream, tmp_path)
    batch = as_batch(data)
    key = kept.join_key(project, batch)
    ResultsJoin.objects.create(**key, builder="other-worker", claimed_at=timezone.now())
    page = results.results_page(project, batch)
    assert [r.custom_id for r in page.rows] == INPUT_IDS
    assert ResultsJoin.objects.get().builder == "other-worker" and not ResultsJoinRow.objects.exists()

    # A claim whose builder stopped long ago is taken over, and what it left is replaced.
    ResultsJoin.objects.update(claimed_at=timezone.now() - timedelta(seconds=kept.BUILD_STALE_SECONDS + 1))
    stale = ResultsJoin.objects.get()
    ResultsJoinRow.objects.create(join=stale, position=0, custom_id="junk", outcome="failed", unsucceeded=True)
    page = results.results_page(project, batch)
    join = ResultsJoin.objects.get()
    assert join.state == ResultsJoin.State.READY and join.builder != "other-worker"
    assert [r.custom_id for r in page.rows] == INPUT_IDS
    assert ResultsJoinRow.objects.filter(custom_id="junk").count() == 0


def test_a_file_that_can_not_be_read_leaves_no_join_and_the_next_view_builds_it(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path)
    upstream.state.inject_fault(route=READS, status=500, times=10)
    assert client.get(url(batch)).status_code == 503
    assert not ResultsJoin.objects.exists() and not ResultsJoinRow.objects.exists()
    upstream.state.clear_faults()
    assert client.get(url(batch)).status_code == 200
    assert ResultsJoin.objects.get().state == ResultsJoin.State.READY


def test_the_join_is_per_project_batch_and_files(upstream, tmp_path):
    project = get_project("default")
    data = make_batch(upstream, tmp_path)
    batch = as_batch(data)
    results.results_page(project, batch)
    # Same batch id, a new error file (say, a re-run): a join of its own.
    other = replace(batch, error_file_id=add_file(upstream, tmp_path, "e2.jsonl", [], "batch_output"))
    page = results.results_page(project, other)
    assert ResultsJoin.objects.count() == 2
    assert page.counts["expired"] == 0 and page.counts["no result"] == 3


def test_retry_lines_take_the_outcomes_from_the_kept_join(upstream, tmp_path):
    project = get_project("default")
    batch = as_batch(make_batch(upstream, tmp_path))
    want = b"".join(results.iter_retry_lines(project, batch))
    results.results_page(project, batch)
    upstream.state.reset_counts()
    assert b"".join(results.iter_retry_lines(project, batch)) == want
    assert want.decode() == "".join(input_line(i) + "\n" for i in ["b", "d", "f"])
    assert reads(upstream) == 1  # the input file only
