"""Submitting a chunk exactly once: claims, a worker dying between upload and create, a worker dying
between create and recording it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from batches.jobs import passes, submit
from batches.jobs.models import Chunk
from batches.projects import get_project
from batches.upstream import client_for
from job_helpers import job_storage  # noqa: F401 (autouse)
from job_helpers import jsonl, limited_project, make_job, request_line
from tests.helpers import at_once

pytestmark = pytest.mark.django_db(transaction=True)


def _expire_claim(chunk: Chunk) -> None:
    Chunk.objects.filter(pk=chunk.pk).update(claim_until=timezone.now() - timedelta(seconds=1))


def test_two_workers_claiming_the_same_chunks_at_once_never_both_win_one(upstream):
    job = make_job(jsonl([request_line(i) for i in range(5)]))
    ids = list(job.chunks.values_list("pk", flat=True)) * 1
    won = at_once(lambda name: submit.claim(ids, name, timezone.now()), ["w1", "w2"])
    assert sorted(won["w1"] + won["w2"]) == sorted(ids)
    assert not set(won["w1"]) & set(won["w2"])


def test_a_worker_killed_between_upload_and_create_leaves_a_file_the_next_claimer_reuses_without_a_second_batch(upstream):
    job = make_job(jsonl([request_line(i) for i in range(5)]))
    chunk = job.chunks.get()
    client = client_for(get_project("default"))
    assert submit.claim([chunk.pk], "dead-worker", timezone.now()) == [chunk.pk]
    # The dead worker uploaded and recorded the file, then died before the create.
    with submit.storage.open_stored(chunk.input_path) as handle:
        uploaded = client.upload_file(handle, "job-chunk.jsonl")
    Chunk.objects.filter(pk=chunk.pk).update(file_id=uploaded.id)
    _expire_claim(chunk)
    upstream.state.reset_counts()
    taken = submit.take_over_stale("default", "next-worker", timezone.now())
    assert taken == [chunk.pk]
    assert submit.submit(chunk.pk, client, "next-worker") == "submitted"
    chunk.refresh_from_db()
    assert chunk.state == Chunk.State.SUBMITTED
    assert upstream.state.stats()["counts"].get("POST /v1/files", 0) == 0
    made = [b for b in upstream.state.list_batches() if (b.get("metadata") or {}).get("dashboard_job") == str(job.pk)]
    assert [b["id"] for b in made] == [chunk.batch_id]
    assert made[0]["input_file_id"] == uploaded.id


def test_a_worker_killed_after_create_but_before_recording_it_is_adopted_not_created_again(upstream):
    job = make_job(jsonl([request_line(i) for i in range(5)]))
    chunk = job.chunks.get()
    client = client_for(get_project("default"))
    submit.claim([chunk.pk], "dead-worker", timezone.now())
    chunk = Chunk.objects.select_related("job").get(pk=chunk.pk)
    with submit.storage.open_stored(chunk.input_path) as handle:
        uploaded = client.upload_file(handle, "job-chunk.jsonl")
    Chunk.objects.filter(pk=chunk.pk).update(file_id=uploaded.id, create_started_at=timezone.now())
    created = client.create_batch(input_file_id=uploaded.id, endpoint=job.endpoint, metadata=submit.marker(chunk))
    _expire_claim(chunk)  # ... and the worker died before recording the batch id
    submit.take_over_stale("default", "next-worker", timezone.now())
    assert submit.submit(chunk.pk, client, "next-worker") == "adopted"
    chunk.refresh_from_db()
    assert chunk.batch_id == created.id
    made = [b for b in upstream.state.list_batches() if (b.get("metadata") or {}).get("dashboard_job") == str(job.pk)]
    assert len(made) == 1


def test_two_workers_running_passes_at_once_create_each_chunk_once(write_projects, upstream):
    limited_project(write_projects, upstream.base_url, max_requests=4, queue_tokens={"gpt-4o-mini": 1000000})
    job = make_job(jsonl([request_line(i) for i in range(40)]))
    project = get_project("default")
    at_once(lambda name: passes.run_pass(project, client_for(project), name), ["w1", "w2"])
    made = [b for b in upstream.state.list_batches() if (b.get("metadata") or {}).get("dashboard_job") == str(job.pk)]
    chunks = sorted((b["metadata"]["dashboard_chunk"], b["metadata"]["dashboard_submission"]) for b in made)
    assert chunks == sorted((str(n), "1") for n in range(1, 11))
    assert job.chunks.filter(state=Chunk.State.SUBMITTED).count() == 10
