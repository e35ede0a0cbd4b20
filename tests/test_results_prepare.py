"""Results prepared when a batch ends: the index's news of a finished batch has the task worker build the
kept join; a visit before it is ready gets a preview at once (counts, the first results, a page that
polls) instead of waiting for the build; old joins are removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from batch_files import make_batch
from batches.index.store import upsert_batches
from batches.models import ResultsJoin, ResultsJoinRow
from batches.results import prepare
from batches.upstream import Batch
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db


def url(batch: dict) -> str:
    return reverse("batches:results", args=["default", batch["id"]])


@pytest.fixture
def index_as(django_capture_on_commit_callbacks):
    """Write the batch into the index as ``source`` would; the change signal runs as after a commit."""

    def write(batch: dict, status: str, *, source: str = "sync") -> None:
        with django_capture_on_commit_callbacks(execute=True):
            upsert_batches("default", [Batch.from_api({**batch, "status": status})], source=source)

    return write


def test_a_batch_that_finishes_in_the_index_has_its_results_prepared_by_the_worker(upstream, tmp_path, immediate_tasks, index_as):
    batch = make_batch(upstream, tmp_path, status="completed")
    index_as(batch, "in_progress")
    assert not ResultsJoin.objects.exists()
    index_as(batch, "completed")  # a sync pass sees it finished: the task runs (at once, here)
    join = ResultsJoin.objects.get(batch_id=batch["id"])
    assert join.state == ResultsJoin.State.READY and join.total == 6
    assert ResultsJoinRow.objects.filter(join=join).count() == 6


def test_a_webhook_about_a_batch_new_to_the_index_prepares_it_but_a_backfill_does_not(upstream, tmp_path, immediate_tasks, index_as):
    old = make_batch(upstream, tmp_path, status="completed")
    index_as(old, "completed", source="sync")  # first seen already finished by a pass: a backfill
    assert not ResultsJoin.objects.exists()
    new = make_batch(upstream, tmp_path, status="completed")
    index_as(new, "completed", source="webhook")
    assert list(ResultsJoin.objects.values_list("batch_id", flat=True)) == [new["id"]]


def test_a_visit_before_a_large_join_is_ready_gets_a_preview_at_once_and_asks_the_worker(client, upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "INLINE_BUILD_MAX", 5)  # the hand-made batch has 6 requests
    batch = make_batch(upstream, tmp_path, status="completed")
    response = client.get(url(batch))
    assert response.status_code == 200
    html = response.content.decode()
    assert "is being prepared" in html and 'hx-trigger="every 2s"' in html and 'aria-busy="true"' in html
    assert "3 succeeded and 2 failed of 6 requests" in html
    assert "<code>e</code>" in html and "<code>d</code>" in html  # output then error file, as they stand
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert not ResultsJoin.objects.exists()  # the view did not build it
    assert [(r.task_path, r.args_kwargs["args"]) for r in DBTaskResult.objects.all()] == [
        ("batches.results.prepare.prepare_results", ["default", batch["id"]])
    ]
    client.get(url(batch))  # asked once a minute at most, whoever looks
    assert DBTaskResult.objects.count() == 1


def test_the_polling_preview_becomes_the_full_view_once_the_worker_has_built_it(client, upstream, tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "INLINE_BUILD_MAX", 5)
    batch = make_batch(upstream, tmp_path, status="completed")
    assert "is being prepared" in client.get(url(batch), headers=HTMX).content.decode()
    assert prepare.prepare_results.call("default", batch["id"]).startswith("ready: 6 requests")
    html = client.get(url(batch), headers=HTMX).content.decode()
    assert "<html" not in html and "is being prepared" not in html and "hx-trigger" not in html
    assert "Page 1 of 1 (6 requests)" in html


def test_a_small_batch_is_still_joined_by_the_view_itself(client, upstream, tmp_path):
    batch = make_batch(upstream, tmp_path, status="completed")
    html = client.get(url(batch)).content.decode()
    assert "is being prepared" not in html and "Page 1 of 1 (6 requests)" in html
    assert ResultsJoin.objects.get(batch_id=batch["id"]).state == ResultsJoin.State.READY


def test_joins_built_more_than_thirty_days_ago_are_removed_with_their_rows(upstream, tmp_path):
    old, recent = (make_batch(upstream, tmp_path, status="completed") for _ in range(2))
    for batch in (old, recent):
        assert prepare.prepare_results.call("default", batch["id"]).startswith("ready")
    ResultsJoin.objects.filter(batch_id=old["id"]).update(built_at=timezone.now() - timedelta(days=31))
    assert prepare.prune_old_joins() == 1
    assert list(ResultsJoin.objects.values_list("batch_id", flat=True)) == [recent["id"]]
    assert ResultsJoinRow.objects.count() == 6


def test_preparing_an_unfinished_or_unknown_batch_does_nothing(upstream, tmp_path):
    running = make_batch(upstream, tmp_path, status="in_progress")
    assert prepare.prepare_results.call("default", running["id"]) == "nothing to prepare"
    assert prepare.prepare_results.call("default", "batch_nope") == "not found"
    assert prepare.prepare_results.call("nowhere", running["id"]) == "unknown project"
    assert not ResultsJoin.objects.exists()


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
