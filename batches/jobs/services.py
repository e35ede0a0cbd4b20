"""Writes on jobs, each audited like the batch actions: create (from a file of any size), pause,
resume, cancel, and retry the final failures once more. A refusal is an exception whose message is a
sentence for the page."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..costs.budgets import budget_enforce
from ..models import AuditEntry
from ..oversight import pricing
from ..projects import Project
from ..services import audited
from . import merge, storage
from .ingest import IngestResult, JobIngest
from .models import ENDED_JOB_STATUSES, Chunk, Job, JobEvent
from .outcomes import FAILED, RETRY, attempts_of, state_byte, status_of
from .tasks import wake

DEFAULT_MAX_ATTEMPTS = 3
MAX_NAME = 200


class JobRefused(Exception):
    """The action was not done; the message says why."""


class InvalidJobFile(JobRefused):
    def __init__(self, result: IngestResult) -> None:
        super().__init__(f"The file was not accepted: {result.error_count:,} problem(s) found; nothing was stored or sent.")
        self.result = result


def ingest_blocks(project: Project, blocks: Iterable[bytes]) -> IngestResult:
    """Check, split and store a job's input read from ``blocks`` (bytes)."""
    with storage.LocalScratch() as scratch:
        ingest = JobIngest(project.limits, scratch)
        try:
            for block in blocks:
                ingest.feed(block)
        except BaseException:
            ingest.discard()
            raise
        return ingest.finish()


def create_job(project: Project, result: IngestResult, *, name: str, actor: str,
               max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Job:
    """The job for an ingested file (refused, with its problems, when the file was not valid)."""
    if not project.provider_info.files:  # Anthropic: requests go inline, there is no input file to chunk
        _discard(result)
        raise JobRefused(f"Jobs need uploaded input files, which {project.provider_info.label} batches do not have: "
                         "create its batches from the batch page instead. Nothing was stored or sent.")
    if not result.ok:
        raise InvalidJobFile(result)
    _budget_check(project, result, actor)
    name = (name.strip() or f"{result.requests:,} requests")[:MAX_NAME]
    with audited(project, actor, AuditEntry.Action.JOB_CREATE) as entry, transaction.atomic():
        job = Job.objects.create(
            project=project.slug, name=name, folder=result.folder, endpoint=result.endpoint or "",
            models_used=result.model[:500], total_requests=result.requests, input_bytes=result.size,
            estimated_tokens=result.estimated_tokens, max_attempts=max_attempts, created_by=actor[:254],
        )
        Chunk.objects.bulk_create(
            Chunk(job=job, number=number, model=plan.model, first_line=plan.first_line, requests=plan.requests,
                  input_bytes=plan.input_bytes, estimated_tokens=plan.estimated_tokens, input_path=plan.stored_path,
                  states=bytes(plan.requests))
            for number, plan in enumerate(result.chunks, start=1)
        )
        JobEvent.objects.create(
            job=job, kind="created",
            message=f"Created by {actor or 'someone'}: {result.requests:,} requests in {len(result.chunks):,} chunk(s), "
                    f"about {result.estimated_tokens:,} input tokens (an upper-bound estimate).",
        )
        entry.batch_id = f"job-{job.pk}"
        entry.message = f"Job {job.pk} “{name}”: {result.requests:,} requests."
    wake(project.slug)
    return job


def _budget_check(project: Project, result: IngestResult, actor: str) -> None:
    """The project's budget (batches/costs/) may refuse the job before anything is sent: its estimated
    total (the input tokens the ingest counted, at batch rates) against what is left this month. A
    refusal is audited and leaves nothing stored."""
    estimated = pricing.price_usage(result.model, result.estimated_tokens, 0, 0).amount
    allowed, sentence = budget_enforce(project, estimated, actor=actor, action=AuditEntry.Action.JOB_CREATE)
    if not allowed:
        _discard(result)
        raise JobRefused(sentence)


def _discard(result: IngestResult) -> None:
    for plan in result.chunks:
        storage.delete(plan.stored_path)


def _event(job: Job, kind: str, message: str) -> None:
    JobEvent.objects.create(job=job, kind=kind, message=message)


def pause(project: Project, job: Job, actor: str) -> None:
    if job.status not in (Job.Status.QUEUED, Job.Status.RUNNING):
        raise JobRefused(f"Job {job.pk} is {job.status}: only a queued or running job can be paused.")
    with audited(project, actor, AuditEntry.Action.JOB_PAUSE, batch_id=f"job-{job.pk}") as entry:
        moved = Job.objects.filter(pk=job.pk, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).update(status=Job.Status.PAUSED)
        if moved != 1:
            raise JobRefused(f"Job {job.pk} is {job.status}: only a queued or running job can be paused.")
        _event(job, "paused", f"Paused by {actor}: no new batches are submitted; running batches go on.")
        entry.message = f"Job {job.pk} paused."


def resume(project: Project, job: Job, actor: str) -> None:
    if job.status != Job.Status.PAUSED:
        raise JobRefused(f"Job {job.pk} is {job.status}: only a paused job can be resumed.")
    with audited(project, actor, AuditEntry.Action.JOB_RESUME, batch_id=f"job-{job.pk}") as entry:
        moved = Job.objects.filter(pk=job.pk, status=Job.Status.PAUSED).update(status=Job.Status.RUNNING)
        if moved != 1:
            raise JobRefused(f"Job {job.pk} is {job.status}: only a paused job can be resumed.")
        _event(job, "resumed", f"Resumed by {actor}.")
        entry.message = f"Job {job.pk} resumed."
    wake(project.slug)


def cancel(project: Project, job: Job, actor: str) -> None:
    if job.ended:
        raise JobRefused(f"Job {job.pk} has already ended ({job.status}).")
    with audited(project, actor, AuditEntry.Action.JOB_CANCEL, batch_id=f"job-{job.pk}") as entry, transaction.atomic():
        moved = Job.objects.filter(pk=job.pk).exclude(status__in=ENDED_JOB_STATUSES).update(
            status=Job.Status.CANCELLED, finished_at=timezone.now(), held_since=None)
        if moved != 1:
            raise JobRefused(f"Job {job.pk} has already ended ({job.status}).")
        dropped = job.chunks.filter(state=Chunk.State.QUEUED).update(state=Chunk.State.DROPPED)
        running = job.chunks.filter(state__in=(Chunk.State.SUBMITTING, Chunk.State.SUBMITTED)).count()
        _event(job, "cancelled", f"Cancelled by {actor}: {dropped} waiting chunk(s) dropped, "
                                 f"{running} running batch(es) being cancelled (what they finished is kept).")
        entry.message = f"Job {job.pk} cancelled."
    wake(project.slug)


def retry_failures(project: Project, job: Job, actor: str) -> int:
    """Put every request that failed for good into new chunks for one more attempt."""
    job.refresh_from_db()
    if not job.ended or job.chunks.filter(state__in=(Chunk.State.SUBMITTING, Chunk.State.SUBMITTED, Chunk.State.MERGING)).exists():
        raise JobRefused(f"Job {job.pk} is still running: retry the final failures once it has ended.")
    homes = list(job.chunks.filter(home__isnull=True, failed__gt=0))
    if not homes:
        raise JobRefused(f"Job {job.pk} has no request that failed for good.")
    with audited(project, actor, AuditEntry.Action.JOB_RETRY, batch_id=f"job-{job.pk}") as entry:
        parts = []
        for home in homes:
            states = bytearray(home.states)
            positions = [i for i, byte in enumerate(states) if status_of(byte) == FAILED]
            top = max(attempts_of(states[i]) for i in positions)
            parts.append((home, positions, top))
        total = 0
        with transaction.atomic():
            Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, finished_at=None, end_noticed=False,
                                                 max_attempts=max(job.max_attempts, max(p[2] for p in parts) + 1))
            for home, positions, top in parts:
                part = merge.make_part(job, home, home, positions, attempt=top + 1)
                states = bytearray(Chunk.objects.select_for_update().get(pk=home.pk).states)
                for i in positions:
                    states[i] = state_byte(RETRY, attempts_of(states[i]))
                Chunk.objects.filter(pk=home.pk).update(states=bytes(states), failed=0, retrying=len(positions))
                merge.save_new_chunks(job, [part])
                total += len(positions)
            _event(job, "retry", f"{actor} asked for one more attempt of the {total:,} request(s) that failed for good.")
        entry.message = f"Job {job.pk}: {total} final failure(s) retried."
    wake(project.slug)
    return total

