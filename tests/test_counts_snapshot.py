"""The stored per-project status counts (SyncState.status_counts) stay current through every write to the
index: a cancel, a create or a sync page moves them by its own changes, under the snapshot's row lock,
so the first view after the write needs no GROUP BY."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from batches.index import selectors
from batches.index.store import store_counts
from batches.index.store import record_action_result, upsert_batches
from batches.models import BatchRecord, SyncState
from batches.upstream import Batch
from tests.find_factory import batch_json, index

pytestmark = pytest.mark.django_db


def recount(project: str = "default") -> dict[str, int]:
    return {
        status: BatchRecord.objects.filter(project=project, status=status).count()
        for status in BatchRecord.objects.filter(project=project).values_list("status", flat=True).distinct()
    }


def counts_without_group_by(project: str = "default") -> dict[str, int]:
    with CaptureQueriesContext(connection) as queries:
        counts = selectors.counts_by_project([project])[project]
    assert not [q["sql"] for q in queries.captured_queries if "GROUP BY" in q["sql"].upper()]
    return counts


@pytest.fixture
def counted():
    index("default", batch_json(id="batch_run1", status="in_progress"), batch_json(id="batch_run2", status="in_progress"),
          batch_json(id="batch_done", status="completed"), batch_json(id="batch_bad", status="failed"))
    index("other", batch_json(id="batch_elsewhere", status="in_progress"))
    store_counts("default")
    store_counts("other")
    return {"in_progress": 2, "completed": 1, "failed": 1}


def test_a_cancel_through_the_dashboard_moves_the_stored_counts_and_the_next_view_needs_no_group_by(counted):
    record_action_result("default", Batch.from_api(batch_json(id="batch_run1", status="cancelling")))
    assert counts_without_group_by() == {"in_progress": 1, "cancelling": 1, "completed": 1, "failed": 1} == recount()
    record_action_result("default", Batch.from_api(batch_json(id="batch_run1", status="cancelled")))
    assert counts_without_group_by() == {"in_progress": 1, "cancelled": 1, "completed": 1, "failed": 1} == recount()
    assert counts_without_group_by("other") == {"in_progress": 1}  # another project's snapshot is untouched


def test_a_batch_created_through_the_dashboard_adds_one_to_its_status(counted):
    record_action_result("default", Batch.from_api(batch_json(id="batch_new", status="validating")))
    assert counts_without_group_by() == {**counted, "validating": 1} == recount()


def test_a_sync_page_of_many_changes_moves_the_counts_to_what_a_recount_says(counted):
    upsert_batches("default", [
        Batch.from_api(batch_json(id="batch_run1", status="completed")),
        Batch.from_api(batch_json(id="batch_run2", status="failed")),
        Batch.from_api(batch_json(id="batch_done", status="completed")),  # unchanged
        Batch.from_api(batch_json(id="batch_n1", status="in_progress")),
        Batch.from_api(batch_json(id="batch_n2", status="in_progress")),
    ])
    assert counts_without_group_by() == {"completed": 2, "failed": 2, "in_progress": 2} == recount()


def test_a_write_after_an_uncounted_change_leaves_the_snapshot_stale_and_the_view_recounts(counted):
    # A row changed behind the index writers' back: the snapshot no longer matches the rows.
    BatchRecord.objects.filter(batch_id="batch_done").update(status="expired", last_synced="2031-01-01T00:00:00Z")
    record_action_result("default", Batch.from_api(batch_json(id="batch_run1", status="cancelling")))
    assert SyncState.objects.get(project="default").status_counts == {"in_progress": 2, "completed": 1, "failed": 1}
    assert selectors.counts_by_project(["default"])["default"] == recount() == {
        "in_progress": 1, "cancelling": 1, "expired": 1, "failed": 1,
    }


def test_a_project_never_counted_gets_no_snapshot_from_a_write():
    record_action_result("default", Batch.from_api(batch_json(id="batch_lone", status="validating")))
    assert not SyncState.objects.filter(project="default").exists()
    assert selectors.counts_by_project(["default"])["default"] == {"validating": 1}
