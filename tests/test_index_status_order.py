"""Issue #23 item 9: in the index a batch's status only moves forward, and a final status never changes;
a snapshot older than the row (a list page read before a webhook's refresh landed) still adds the files,
counts and usage the row lacks."""

from __future__ import annotations

import pytest

from batches.index.signals import batches_changed
from batches.index.store import goes_back, upsert_batches
from batches.models import BatchRecord
from batches.upstream import Batch
from find_factory import batch_json

pytestmark = pytest.mark.django_db


def write(**fields) -> dict:
    return upsert_batches("default", [Batch.from_api(batch_json(id="batch_order", **fields))], samples=True)


def row() -> BatchRecord:
    return BatchRecord.objects.get(project="default", batch_id="batch_order")


def counts(total, completed, failed) -> dict:
    return {"total": total, "completed": completed, "failed": failed}


def test_a_completed_batch_does_not_go_back_to_in_progress_and_nothing_is_signalled():
    write(status="completed", completed_at=1_800_000_000, output_file_id="file-out", request_counts=counts(10, 9, 1))
    heard = []
    batches_changed.connect(receiver := lambda **kw: heard.append(kw["changes"]), weak=False)
    try:
        changes = write(status="in_progress", request_counts=counts(10, 4, 0))
    finally:
        batches_changed.disconnect(receiver)
    record = row()
    assert changes == {}
    assert heard == []
    assert record.status == "completed" and record.raw["status"] == "completed"
    assert record.completed_at == 1_800_000_000 and record.output_file_id == "file-out"
    assert (record.total_requests, record.completed_requests, record.failed_requests) == (10, 9, 1)


def test_a_final_status_never_turns_into_another_final_status():
    write(status="completed")
    assert write(status="cancelled", cancelled_at=1_800_000_100) == {}
    assert row().status == "completed" and row().cancelled_at is None


def test_cancelling_does_not_go_back_to_in_progress():
    write(status="cancelling", cancelling_at=1_800_000_000)
    write(status="in_progress")
    assert row().status == "cancelling" and row().cancelling_at == 1_800_000_000


def test_statuses_move_forward_through_the_lifecycle():
    assert write(status="validating") == {"batch_order": (None, "validating")}
    assert write(status="in_progress") == {"batch_order": ("validating", "in_progress")}
    assert write(status="finalizing") == {"batch_order": ("in_progress", "finalizing")}
    assert write(status="cancelling") == {"batch_order": ("finalizing", "cancelling")}
    assert write(status="cancelled") == {"batch_order": ("cancelling", "cancelled")}
    assert row().status == "cancelled"


def test_an_older_snapshot_still_gives_a_final_row_the_files_counts_and_usage_it_lacks():
    write(status="cancelled", cancelled_at=1_800_000_000, output_file_id=None, request_counts=counts(10, 2, 0))
    usage = {"input_tokens": 50, "output_tokens": 5, "total_tokens": 55}
    write(status="cancelling", output_file_id="file-out", error_file_id="file-err",
          request_counts=counts(10, 3, 1), usage=usage)
    record = row()
    assert record.status == "cancelled"
    assert (record.output_file_id, record.error_file_id) == ("file-out", "file-err")
    assert record.raw["output_file_id"] == "file-out"
    assert (record.completed_requests, record.failed_requests) == (3, 1)
    assert record.total_tokens == 55
    assert "file-out" in record.search_text


def test_a_later_snapshot_with_the_same_final_status_gains_files_and_counts():
    write(status="completed", output_file_id=None, request_counts=counts(10, 0, 0))
    write(status="completed", output_file_id="file-late", request_counts=counts(10, 10, 0))
    record = row()
    assert record.output_file_id == "file-late" and record.completed_requests == 10


def test_an_older_snapshot_never_lowers_the_counts_of_an_unfinished_row():
    write(status="finalizing", request_counts=counts(10, 10, 0))
    write(status="in_progress", request_counts=counts(10, 6, 0))
    assert row().status == "finalizing" and row().completed_requests == 10


def test_a_status_the_api_added_later_is_taken_unless_the_row_is_final():
    assert not goes_back("in_progress", "paused_by_upstream")
    assert not goes_back("paused_by_upstream", "validating")
    assert goes_back("completed", "paused_by_upstream")
    write(status="in_progress")
    write(status="paused_by_upstream")
    assert row().status == "paused_by_upstream"
