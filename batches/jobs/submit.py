"""Submitting chunks: claim, upload, create, each step recorded so a crash anywhere resumes cleanly.

Several workers on several machines run passes at once; a chunk is created once because

1. the pass decides and *claims* in one transaction that locks the project's model queue rows
   (``select_for_update``; SQLite serializes writers anyway): ``UPDATE … SET state='submitting',
   claimed_by=<worker> WHERE id=… AND state='queued'`` acts only when exactly one row changed;
2. the uploaded file's id is recorded before the create, and a later claimer (the first one's claim
   expired: it died) reuses it instead of uploading again;
3. ``create_started_at`` is recorded just before the create call, and the batch carries a marker in its
   metadata (``dashboard_job``, ``dashboard_job_key``, ``dashboard_chunk``, ``dashboard_submission``). A
   later claimer that finds ``create_started_at`` set first looks upstream for a batch with the marker
   created since then, and adopts it: a crash between create and recording never yields a second batch.

Every write after the claim is conditional on ``claimed_by`` still being this worker.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ..projects import get_project
from ..upstream import Batch, BatchClient, UpstreamError
from . import refusals, storage
from .decide import backoff
from .models import Chunk, Job, JobEvent
from .refusals import backoff_seconds

logger = logging.getLogger("batches.jobs")

CLAIM_SECONDS = 15 * 60  # long enough for a 200 MB upload; a dead worker's claim is taken over after it
MARKER_LOOKBACK = timedelta(minutes=10)  # clock skew between the dashboard and the API
MARKER_PAGES = 20


def marker(chunk: Chunk) -> dict[str, str]:
    return {
        "dashboard_job": str(chunk.job_id),
        "dashboard_attempt": str(chunk.attempt),
        "dashboard_job_key": chunk.job.folder,
        "dashboard_chunk": str(chunk.number),
        "dashboard_submission": str(chunk.submission),
    }


def claim(chunk_ids: list[int], worker: str, now: datetime) -> list[int]:
    """Claim queued chunks (or take over submitting ones whose claim ran out); returns those won."""
    won = []
    until = now + timedelta(seconds=CLAIM_SECONDS)
    for chunk_id in chunk_ids:
        fresh = Chunk.objects.filter(pk=chunk_id, state=Chunk.State.QUEUED).update(
            state=Chunk.State.SUBMITTING, claimed_by=worker, claim_until=until
        )
        if fresh == 1:
            won.append(chunk_id)
    return won


def take_over_stale(project: str, worker: str, now: datetime) -> list[int]:
    """Submitting chunks whose worker died (claim expired): this worker finishes them."""
    won = []
    until = now + timedelta(seconds=CLAIM_SECONDS)
    stale = Chunk.objects.filter(job__project=project, state=Chunk.State.SUBMITTING, claim_until__lt=now)
    for chunk_id in stale.values_list("pk", flat=True):
        taken = Chunk.objects.filter(pk=chunk_id, state=Chunk.State.SUBMITTING, claim_until__lt=now).update(
            claimed_by=worker, claim_until=until
        )
        if taken == 1:
            won.append(chunk_id)
    return won


def _mine(chunk: Chunk, worker: str):
    return Chunk.objects.filter(pk=chunk.pk, state=Chunk.State.SUBMITTING, claimed_by=worker)


def find_marked(client: BatchClient, chunk: Chunk) -> Batch | None:
    """The batch a previous claimer created for this submission, if any (newest first, back to a little
    before ``create_started_at``)."""
    wanted = marker(chunk)
    since = int((chunk.create_started_at - MARKER_LOOKBACK).timestamp())
    after = None
    for _ in range(MARKER_PAGES):
        page = client.list_batches(after=after, limit=100)
        for batch in page.data:
            metadata = batch.metadata or {}
            if all(metadata.get(key) == value for key, value in wanted.items()):
                return batch
        if not page.has_more or not page.data or (page.data[-1].created_at or 0) < since:
            return None
        after = page.last_id or page.data[-1].id
    return None


def submit(chunk_id: int, client: BatchClient, worker: str, now: datetime | None = None) -> str:
    """Upload (unless done) and create the batch of a chunk this worker claimed. Returns what happened."""
    chunk = Chunk.objects.select_related("job").get(pk=chunk_id)
    if chunk.state != Chunk.State.SUBMITTING or chunk.claimed_by != worker:
        return "not mine"
    job = chunk.job
    try:
        if chunk.create_started_at is not None:
            existing = find_marked(client, chunk)
            if existing is not None:
                return _recorded(chunk, worker, existing, adopted=True)
        if not chunk.file_id:
            with storage.open_stored(chunk.input_path) as handle:
                uploaded = client.upload_file(handle, f"job{job.pk}-chunk{chunk.number}-try{chunk.attempt}.jsonl")
            if _mine(chunk, worker).update(file_id=uploaded.id) != 1:
                return "claim lost after upload"
            chunk.file_id = uploaded.id
        started = timezone.now()
        if _mine(chunk, worker).update(create_started_at=started) != 1:
            return "claim lost before create"
        chunk.create_started_at = started
        batch = client.create_batch(input_file_id=chunk.file_id, endpoint=job.endpoint, metadata=marker(chunk))
    except UpstreamError as err:
        if (message := refusals.create_refusal(err)) is not None and (project := get_project(job.project)) is not None:
            # Azure's fail-fast regions refuse the create itself (provider-specs/NOTES.md §2.4): the same
            # as a batch that failed with token_limit_exceeded. The uploaded file is kept for the next try.
            what = f"The batch of chunk {chunk.number} (create answered 400)"
            refusals.refuse(project, chunk, _mine(chunk, worker), message, what, now or timezone.now())
            return "refused"
        return _back_to_queue(chunk, worker, err, now or timezone.now())
    return _recorded(chunk, worker, batch, adopted=False)


def _recorded(chunk: Chunk, worker: str, batch: Batch, *, adopted: bool) -> str:
    with transaction.atomic():
        changed = _mine(chunk, worker).update(
            state=Chunk.State.SUBMITTED, batch_id=batch.id, batch_status=batch.status, submitted_at=timezone.now(),
            claimed_by="", claim_until=None,
        )
        if changed != 1:
            return "claim lost after create"
        how = "found upstream after a restart and adopted" if adopted else "submitted"
        JobEvent.objects.create(
            job_id=chunk.job_id, kind="submitted", chunk_number=chunk.number,
            message=f"Chunk {chunk.number} ({chunk.requests:,} requests, attempt {chunk.attempt}) {how} as batch {batch.id}.",
        )
        Job.objects.filter(pk=chunk.job_id, status=Job.Status.QUEUED).update(status=Job.Status.RUNNING, started_at=timezone.now())
    return "adopted" if adopted else "submitted"


def _back_to_queue(chunk: Chunk, worker: str, err: UpstreamError, now: datetime) -> str:
    """Upload or create failed: the chunk waits and is tried again (the file id, if any, is kept)."""
    wait = backoff(1, backoff_seconds())
    if err.retry_after:
        wait = max(wait, timedelta(seconds=err.retry_after))
    with transaction.atomic():
        changed = _mine(chunk, worker).update(state=Chunk.State.QUEUED, claimed_by="", claim_until=None, not_before=now + wait)
        if changed == 1:
            JobEvent.objects.create(
                job_id=chunk.job_id, kind="upstream_error", chunk_number=chunk.number,
                message=f"Chunk {chunk.number} could not be submitted: {err} It is tried again in {int(wait.total_seconds())} s.",
            )
    logger.warning("job %s chunk %s not submitted: %s", chunk.job_id, chunk.number, err)
    return "upstream error"
