"""One scheduling pass over a project's jobs (run by the task worker, :mod:`batches.jobs.tasks`):
notice ended chunks and merge them, put refused ones back in the queue, cancel what a cancelled job
still runs, submit what fits, and finish jobs whose every request has a final answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import Count, F, Q, Sum
from django.utils import timezone

from ..costs.budgets import budget_allows
from ..index.store import upsert_batches
from ..models import BatchRecord
from ..projects import Project
from ..upstream import TERMINAL_STATUSES, Batch, BatchClient, UpstreamError
from . import decide, merge, notify, refusals
from .models import ENDED_JOB_STATUSES, Chunk, Job, JobEvent
from .refusals import IN_FLIGHT, TOKEN_LIMIT, queue_row
from .submit import CLAIM_SECONDS, claim, submit, take_over_stale

logger = logging.getLogger("batches.jobs")

ACTIVE = (Chunk.State.QUEUED, Chunk.State.SUBMITTING, Chunk.State.SUBMITTED, Chunk.State.MERGING)
UNFINISHED_BATCH = ("validating", "in_progress", "finalizing", "cancelling")
HELD_NOTICE = timedelta(hours=1)
SOURCE = "jobs"  # the batches_changed sender of our own index writes (our receiver ignores it)


@dataclass
class PassReport:
    polled: int = 0
    merged: int = 0
    refused: int = 0
    submitted: list[str] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)


def run_pass(project: Project, client: BatchClient, worker: str, now: datetime | None = None) -> PassReport:
    report = PassReport()
    now = now or timezone.now()
    _poll(project, client, worker, report, now)
    _cancel_running(project, client)
    _schedule(project, client, worker, report, now)
    _finish_jobs(project, report, now)
    return report


def has_work(project: str) -> bool:
    return Chunk.objects.filter(job__project=project, state__in=ACTIVE).exists() or Job.objects.filter(
        project=project).exclude(status__in=ENDED_JOB_STATUSES).exists()


# -- chunks in flight -------------------------------------------------------------------------------


def _poll(project: Project, client: BatchClient, worker: str, report: PassReport, now: datetime) -> None:
    chunks = list(Chunk.objects.filter(job__project=project.slug, state=Chunk.State.SUBMITTED).select_related("job"))
    stale = Chunk.objects.filter(job__project=project.slug, state=Chunk.State.MERGING, claim_until__lt=now)
    chunks += list(stale.select_related("job"))
    for chunk in chunks:
        try:
            batch = client.retrieve_batch(chunk.batch_id)
        except UpstreamError as err:
            logger.warning("job %s chunk %s: batch %s not read: %s", chunk.job_id, chunk.number, chunk.batch_id, err)
            continue
        report.polled += 1
        upsert_batches(project.slug, [batch], samples=True, source=SOURCE)
        _observe(project, chunk, batch)
        if batch.status == "failed" and any(error.code == TOKEN_LIMIT for error in batch.errors):
            _refused(project, chunk, batch, now)
            report.refused += 1
        elif batch.status in TERMINAL_STATUSES:
            until = now + timedelta(seconds=CLAIM_SECONDS)
            claimed = Chunk.objects.filter(pk=chunk.pk, state=chunk.state, claimed_by=chunk.claimed_by).update(
                state=Chunk.State.MERGING, claimed_by=worker, claim_until=until, ended_at=now
            )
            if claimed == 1:
                chunk.refresh_from_db()
                merge.absorb(chunk, batch, client)
                report.merged += 1


def _observe(project: Project, chunk: Chunk, batch: Batch) -> None:
    """Record the batch's state on the chunk; its first step past validation teaches the model's queue."""
    counts, usage = batch.request_counts, batch.usage
    accepted = chunk.batch_status in ("", "validating") and batch.status not in ("validating", "failed")
    Chunk.objects.filter(pk=chunk.pk).update(
        batch_status=batch.status[:32],
        completed_requests=counts.completed if counts else 0,
        failed_requests=counts.failed if counts else 0,
        input_tokens=usage.input_tokens if usage else None,
        cached_tokens=usage.cached_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
    )
    chunk.batch_status = batch.status
    if accepted:
        with transaction.atomic():
            queue = queue_row(project, chunk.model)
            queue.budget, queue.window = decide.after_acceptance(queue.budget, queue.window, project.limits.budget_for(chunk.model))
            queue.save(update_fields=["budget", "window"])


def _refused(project: Project, chunk: Chunk, batch: Batch, now: datetime) -> None:
    """The batch ended ``failed`` with ``token_limit_exceeded`` (see :mod:`batches.jobs.refusals`)."""
    message = next((error.message for error in batch.errors if error.code == TOKEN_LIMIT), "") or TOKEN_LIMIT
    pending = Chunk.objects.filter(pk=chunk.pk, state=Chunk.State.SUBMITTED)
    refusals.refuse(project, chunk, pending, message, f"Batch {batch.id} of chunk {chunk.number}", now)


def _cancel_running(project: Project, client: BatchClient) -> None:
    running = Chunk.objects.filter(
        job__project=project.slug, job__status=Job.Status.CANCELLED, state=Chunk.State.SUBMITTED,
        batch_status__in=("validating", "in_progress", "finalizing", ""),
    )
    for chunk in running:
        try:
            batch = client.cancel_batch(chunk.batch_id)
        except UpstreamError as err:
            logger.warning("job %s: cancelling batch %s failed: %s", chunk.job_id, chunk.batch_id, err)
            continue
        Chunk.objects.filter(pk=chunk.pk).update(batch_status=batch.status[:32])


# -- submitting -------------------------------------------------------------------------------------


def _foreign_tokens(project: Project, client: BatchClient, model: str, own: set[str]) -> int:
    """Estimated tokens of the project's other unfinished batches of ``model``: their input files'
    bytes (an upper bound, as for our own chunks), read once per file and cached."""
    total = 0
    rows = BatchRecord.objects.filter(project=project.slug, model=model, status__in=UNFINISHED_BATCH)
    for batch_id, file_id in rows.values_list("batch_id", "input_file_id")[:500]:
        if batch_id in own or not file_id:
            continue
        key = f"jobs:file-bytes:{project.slug}:{file_id}"
        size = cache.get(key)
        if size is None:
            try:
                size = client.retrieve_file(file_id).bytes or 0
            except UpstreamError:
                size = 0
            cache.set(key, size, 24 * 3600)
        total += size
    return total


def _created_last_hour(project: Project, own: set[str], now: datetime) -> int:
    since = now - timedelta(hours=1)
    mine = Chunk.objects.filter(job__project=project.slug, submitted_at__gte=since).count()
    others = BatchRecord.objects.filter(project=project.slug, created_at__gte=int(since.timestamp())).exclude(batch_id__in=own)
    return mine + others.count()


def _schedule(project: Project, client: BatchClient, worker: str, report: PassReport, now: datetime) -> None:
    for chunk_id in take_over_stale(project.slug, worker, now):
        report.submitted.append(submit(chunk_id, client, worker, now))
    waiting = (
        Chunk.objects.filter(job__project=project.slug, state=Chunk.State.QUEUED, job__status__in=(Job.Status.QUEUED, Job.Status.RUNNING))
        .filter(Q(not_before__isnull=True) | Q(not_before__lte=now))
        .order_by("job__created_at", "job_id", "number")
    )
    candidates = [decide.Candidate(c.pk, c.model, c.estimated_tokens, c.requests) for c in waiting[:200]]
    if not candidates:
        Job.objects.filter(project=project.slug, held_since__isnull=False).update(held_since=None)
        return
    allowed, why = budget_allows(project, None, now)
    if not allowed:  # the month's spend reached a blocking budget: no new batch; running ones go on
        _held_by_budget(candidates, why, now)
        return
    models = sorted({c.model for c in candidates})
    own = set(Chunk.objects.filter(job__project=project.slug).exclude(batch_id="").values_list("batch_id", flat=True))
    foreign = {model: _foreign_tokens(project, client, model, own) for model in models}
    with transaction.atomic():
        queues = {}
        for model in models:
            row = queue_row(project, model)
            configured = project.limits.budget_for(model)
            budget = row.budget if row.budget is not None else configured
            if configured is not None and budget is not None:
                budget = min(budget, configured)
            flight = Chunk.objects.filter(job__project=project.slug, model=model, state__in=IN_FLIGHT).aggregate(
                tokens=Sum("estimated_tokens"), chunks=Count("pk"))
            queues[model] = decide.Queue(model, budget, row.window, (flight["tokens"] or 0) + foreign[model], flight["chunks"])
        plan = decide.plan_submissions(candidates, queues, _created_last_hour(project, own, now))
        won = claim(plan.submit, worker, now)
        to_split = claim(plan.split, worker, now)
        too_big = claim(plan.too_big, worker, now)
        _mark_held(project, candidates, plan, won, now)
    for chunk_id in to_split:
        merge.split(Chunk.objects.select_related("job").get(pk=chunk_id), "its estimate does not fit the model's budget on its own.")
    for chunk_id in too_big:
        _fail_too_big(chunk_id, worker)
    for chunk_id in won:
        report.submitted.append(submit(chunk_id, client, worker, now))


def _mark_held(project: Project, candidates, plan: decide.Plan, won: list[int], now: datetime) -> None:
    by_chunk = dict(Chunk.objects.filter(pk__in=[c.chunk_id for c in candidates]).values_list("pk", "job_id"))
    moving = {by_chunk[chunk_id] for chunk_id in won}
    held = {by_chunk[c.chunk_id]: plan.held[c.model] for c in candidates if c.model in plan.held}
    if plan.rate_limited:
        held.update({by_chunk[c.chunk_id]: "2,000 batches were created in the last hour, the most the API allows."
                     for c in candidates if c.chunk_id not in won})
    Job.objects.filter(pk__in=moving).update(held_since=None)
    for job_id, why in held.items():
        if job_id in moving:
            continue
        if Job.objects.filter(pk=job_id, held_since__isnull=True).update(held_since=now) == 1:
            JobEvent.objects.create(job_id=job_id, kind="held", message=f"Held by the queue: {why}")


def _held_by_budget(candidates, why: str, now: datetime) -> None:
    for job_id in set(Chunk.objects.filter(pk__in=[c.chunk_id for c in candidates]).values_list("job_id", flat=True)):
        if Job.objects.filter(pk=job_id, held_since__isnull=True).update(held_since=now) == 1:
            JobEvent.objects.create(job_id=job_id, kind="held", message=f"Held by the budget: {why}")


def _fail_too_big(chunk_id: int, worker: str) -> None:
    chunk = Chunk.objects.select_related("job").get(pk=chunk_id)
    failure = {"code": "too_large_for_queue",
               "message": "This request's estimated tokens are more than the model's whole enqueued-token budget."}
    if Chunk.objects.filter(pk=chunk_id, claimed_by=worker).update(state=Chunk.State.MERGING) == 1:
        merge.absorb(Chunk.objects.select_related("job").get(pk=chunk_id), None, None, failure=failure)
        JobEvent.objects.create(job_id=chunk.job_id, kind="too_big", chunk_number=chunk.number, message=failure["message"])


# -- jobs -------------------------------------------------------------------------------------------


def _finish_jobs(project: Project, report: PassReport, now: datetime) -> None:
    for job in Job.objects.filter(project=project.slug, end_noticed=False):
        active = job.chunks.filter(state__in=ACTIVE).exists()
        homes = job.chunks.filter(home__isnull=True).aggregate(done=Sum(F("succeeded") + F("failed")), ok=Sum("succeeded"))
        if not active and not job.ended and (homes["done"] or 0) >= job.total_requests:
            # Every request has its final answer; a job none of whose requests succeeded has failed.
            failed = job.total_requests > 0 and not homes["ok"]
            status, kind, message = (
                (Job.Status.FAILED, "failed", "Every request has a final answer and none succeeded: the job failed.")
                if failed else
                (Job.Status.COMPLETED, "completed", "Every request has a final answer: the job is completed.")
            )
            if Job.objects.filter(pk=job.pk, status__in=(Job.Status.RUNNING, Job.Status.QUEUED, Job.Status.PAUSED)).update(
                    status=status, finished_at=now, held_since=None) == 1:
                JobEvent.objects.create(job=job, kind=kind, message=message)
                job.refresh_from_db()
        if job.ended and not active:
            if Job.objects.filter(pk=job.pk, end_noticed=False).update(end_noticed=True) == 1:
                notify.job_ended(job)
                report.finished.append(job.pk)
        elif job.held_since is not None and now - job.held_since > HELD_NOTICE:
            notify.job_held(job)
