"""A job end to end against the emulator, with scheduling passes run in the test process."""

from __future__ import annotations

import pytest
from django_tasks_db.models import DBTaskResult

from batches.index.signals import batches_changed
from batches.jobs.models import Chunk, Job
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import drive, jsonl, limited_project, make_job, request_line, result_lines, run_pass

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _no_backoff(settings):
    settings.DASHBOARD_JOBS_BACKOFF_SECONDS = 0


@pytest.fixture
def small_batches(write_projects, upstream):
    """Batches of at most 40 requests, no queue budget configured (learned: one chunk at first)."""
    limited_project(write_projects, upstream.base_url, max_requests=40)
    return upstream


@pytest.fixture
def roomy_queue(write_projects, upstream):
    """Batches of at most 40 requests and a queue budget that holds many of them."""
    limited_project(write_projects, upstream.base_url, max_requests=40, queue_tokens={"gpt-4o-mini": 100000})
    return upstream


def test_a_job_of_100_requests_completes_in_three_chunks_with_every_custom_id_answered_once_in_input_order(small_batches):
    lines = [request_line(i, fail=(400 if i == 7 else None)) for i in range(100)]
    job = make_job(jsonl(lines))
    assert job.chunks.count() == 3
    job = drive(small_batches, job)
    assert job.status == Job.Status.COMPLETED
    answers = result_lines(job)
    assert [answer["custom_id"] for answer in answers] == [f"req-{i}" for i in range(100)]
    assert answers[7]["response"]["status_code"] == 400
    assert all(set(answer) == {"custom_id", "response", "error", "batch_id", "attempts"} for answer in answers)


def _submitted(job: Job) -> list[Chunk]:
    return list(job.chunks.filter(state=Chunk.State.SUBMITTED).order_by("number"))


def test_a_refused_chunk_goes_back_to_the_queue_without_counting_an_attempt_and_an_expired_one_is_salvaged(roomy_queue):
    state = roomy_queue.state
    job = make_job(jsonl([request_line(i) for i in range(80)]))
    run_pass()
    first, second = _submitted(job)
    # The API refuses the first chunk's batch at validation (NOTES.md §2.1), and the second never finishes.
    state.batches[first.batch_id].validation = {
        "ok": False, "model": "gpt-4o-mini", "total": 0,
        "errors": [{"code": "token_limit_exceeded", "message": "Enqueued token limit reached for gpt-4o-mini.",
                    "param": None, "line": None}],
    }
    state.configure_batch(second.batch_id, rate=0.0001)
    state.advance(5)
    run_pass()
    refused_batch = first.batch_id
    first.refresh_from_db()
    # Back in the queue and (no backoff in tests) submitted again: a new batch, still attempt 1.
    assert (first.attempt, first.submission, first.token_limit_hits) == (1, 2, 1)
    assert first.batch_id not in ("", refused_batch)
    assert state.batches[first.batch_id].data["metadata"]["dashboard_submission"] == "2"
    assert job.events.filter(kind="token_limit").count() == 1
    state.advance(90_000)  # past the 24 h window: the slow batch expires
    job = drive(roomy_queue, job)
    assert job.status == Job.Status.COMPLETED
    salvage = job.chunks.filter(attempt=2, home__number=second.number).first()
    assert salvage is not None and salvage.requests > 0
    answers = result_lines(job)
    assert [answer["custom_id"] for answer in answers] == [f"req-{i}" for i in range(80)]
    assert not any((answer["error"] or {}).get("code") == "batch_expired" for answer in answers)


def test_the_sync_or_a_webhook_seeing_a_chunks_batch_end_wakes_the_scheduler_at_once(roomy_queue):
    job = make_job(jsonl([request_line(i) for i in range(3)]))
    run_pass()
    batch_id = job.chunks.get().batch_id
    scheduler = DBTaskResult.objects.filter(task_path="batches.jobs.tasks.advance_jobs")
    scheduler.delete()
    batches_changed.send(sender="sync", project="default", changes={"batch_other": ("in_progress", "completed")})
    assert scheduler.count() == 0
    batches_changed.send(sender="webhook", project="default", changes={batch_id: ("in_progress", "completed")})
    assert list(scheduler.values_list("queue_name", flat=True)) == ["urgent"]
