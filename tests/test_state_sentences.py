"""One true sentence per state, on the batch page and in the list's rows: every status, with the
counts a batch in that status can have. Rendered straight from the templates and batches/rows.py
(the same code the views use), so these run without an upstream."""

from __future__ import annotations

import re
import time

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory

from batches.projects import get_project
from batches.rows import RowContext, render_row
from batches.upstream import Batch

pytestmark = pytest.mark.django_db  # the batch page reads the audit trail for its history

NOW = int(time.time())
UNFINISHED = ["validating", "in_progress", "finalizing", "cancelling"]
FINISHED = ["completed", "failed", "expired", "cancelled"]


def make(status: str, *, total=1000, completed=850, failed=19, model=None, **fields) -> Batch:
    data = {
        "id": "batch_abc123", "object": "batch", "endpoint": "/v1/chat/completions", "status": status,
        "input_file_id": "file-in", "completion_window": "24h", "created_at": NOW - 7200,
        "expires_at": NOW + 79200, "model": model,
        "request_counts": {"total": total, "completed": completed, "failed": failed},
    }
    if status in FINISHED:
        data[f"{status}_at"] = NOW - 3600
        data["expires_at"] = NOW - 60  # an ended batch's expiry is in the past: noise, not news
        if status != "failed":
            data["output_file_id"] = "file-out"
    data.update(fields)
    return Batch.from_api(data)


def batch_page(batch: Batch) -> str:
    request = RequestFactory().get("/")
    context = {"batch": batch, "project": get_project("default"), "poll_seconds": "5", "can_operate": True}
    return render_to_string("batches/batch_detail.html#batch-live", context, request=request)


def list_row(batch: Batch) -> str:
    ctx = RowContext.build(project="default", can_operate=True, csrf_token="tok")
    return str(render_row(batch, ctx))


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("status", UNFINISHED + FINISHED)
def test_requests_without_an_outcome_are_pending_only_while_the_batch_can_still_run_them(status):
    batch = make(status)  # 131 of 1,000 requests have no outcome
    page, row = text(batch_page(batch)), list_row(batch)
    if status in FINISHED:
        assert "Pending" not in page and "% done" not in page
        assert f"Not run: {status} 131" in page
        assert f"131 not run: {status}" in text(row)
        assert 'role="progressbar"' not in row and 'role="progressbar"' not in batch_page(batch)
        assert "131 of 1,000 requests were not run" in page
    else:
        assert "Pending 131" in page and "86.9% done" in page
        assert "Not run:" not in page and "not-run" not in row
        assert 'role="progressbar"' in row


@pytest.mark.parametrize("status", UNFINISHED + FINISHED)
def test_the_status_sentence_is_the_same_in_the_row_and_on_the_page(status):
    batch = make(status)
    hint = re.search(r'<span class="status-hint">([^<]*)</span>', batch_page(batch)).group(1)
    assert f'title="{hint}"' in list_row(batch)
    assert "may have failed" not in hint


@pytest.mark.parametrize(
    ("counts", "sentence"),
    [
        ({"total": 3, "completed": 3, "failed": 0}, "The batch has finished and every request succeeded."),
        ({"total": 100, "completed": 75, "failed": 25}, "The batch has finished; 25 of 100 requests failed."),
        ({"total": 9, "completed": 0, "failed": 9}, "The batch has finished, but every request failed."),
    ],
)
def test_a_completed_batch_says_one_true_thing_about_its_requests(counts, sentence):
    batch = make("completed", **counts)
    page = batch_page(batch)
    assert f'<span class="status-hint">{sentence}</span>' in page
    assert "may have failed" not in page
    assert f'title="{sentence}"' in list_row(batch)


@pytest.mark.parametrize("status", UNFINISHED + FINISHED)
def test_a_missing_model_is_not_known_yet_only_while_the_batch_runs(status):
    batch = make(status)
    row, page = list_row(batch), text(batch_page(batch))
    if status in FINISHED:
        assert "model not reported" in row and "Model not reported" in page
        assert "not known yet" not in row and "not known yet" not in page
    else:
        assert "model not known yet" in row and "Model not known yet" in page


@pytest.mark.parametrize("status", UNFINISHED + FINISHED)
def test_expiry_is_shown_only_while_it_still_matters(status):
    batch = make(status)
    row, page = list_row(batch), batch_page(batch)
    if status in FINISHED:
        assert "expires" not in row and "<dt>Expires</dt>" not in page
        assert "finished" in row and "<dt>Finished</dt>" in page
    else:
        assert "expires" in row and "<dt>Expires</dt>" in page


def test_a_finished_batchs_output_files_say_when_they_are_deleted():
    page = batch_page(make("completed"))
    assert "<dt>Results kept until</dt>" in page and "30 days after the batch finished" in page
    custom = batch_page(make("completed", output_expires_after={"anchor": "created_at", "seconds": 7200}))
    assert "when the batch's expiry runs out" in custom
    assert "Results kept until" not in batch_page(make("failed"))  # no files to keep


def test_the_batch_page_and_the_rows_share_one_badge_progress_bar_and_cancel_form():
    batch = make("in_progress")
    page, row = batch_page(batch), list_row(batch)
    badge = re.search(r'<span class="badge status-in_progress" title="[^"]*">in progress</span>', row).group(0)
    assert badge.replace('class="badge ', 'id="batch-status" class="badge badge-lg ') in page
    bar = re.search(r'<div class="progress" (role="progressbar"[^>]*)>', row).group(1)
    assert f'<div class="progress progress-lg" {bar}>' in page
    confirm = 'hx-confirm="Cancel batch batch_abc123? Requests already running will finish; the rest will not run."'
    assert confirm in page and confirm in row
