"""``token_limit_exceeded``: the API refused a chunk's batch because the model's enqueued-token queue is
full. It arrives two ways (provider-specs/NOTES.md §2.4): a batch that validates and then ends
``failed`` with that code (OpenAI, Azure's classic regions), or an HTTP 400 to the create itself whose
error names it (Azure's "fail fast" regions). Both are handled here the same way: the chunk goes back to
the queue with backoff (not an attempt), the model's budget is lowered, and the job's timeline says so.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import F, QuerySet

from ..conf import conf
from ..projects import Project
from ..upstream import UpstreamBadRequest, UpstreamError
from . import decide, merge
from .models import Chunk, JobEvent, ModelQueue

TOKEN_LIMIT = "token_limit_exceeded"
IN_FLIGHT = (Chunk.State.SUBMITTING, Chunk.State.SUBMITTED)


def backoff_seconds() -> float:
    return conf().jobs_backoff_seconds


def create_refusal(err: UpstreamError) -> str | None:
    """The API's message when a create was answered 400 ``token_limit_exceeded`` (in the error's code or,
    failing that, its message), else None: any other error is not a queue refusal."""
    if not isinstance(err, UpstreamBadRequest) or err.status_code != 400:
        return None
    message = err.upstream_message or ""
    if err.code == TOKEN_LIMIT or TOKEN_LIMIT in message:
        return message or TOKEN_LIMIT
    return None


def queue_row(project: Project, model: str) -> ModelQueue:
    """The model's queue row, locked for this transaction (created at the configured budget)."""
    ModelQueue.objects.get_or_create(project=project.slug, model=model, defaults={"budget": project.limits.budget_for(model)})
    return ModelQueue.objects.select_for_update().get(project=project.slug, model=model)


def refuse(project: Project, chunk: Chunk, pending: QuerySet, message: str, what: str, now: datetime) -> bool:
    """Put ``chunk`` back in the queue after a refusal. ``pending`` selects the chunk in the state this
    caller owns (nothing happens if it no longer matches); ``what`` begins the timeline's sentence
    ("Batch batch_… of chunk 3"). The uploaded file stays on the chunk for the next submission."""
    hits = chunk.token_limit_hits + 1
    with transaction.atomic():
        queue = queue_row(project, chunk.model)
        alone = not Chunk.objects.filter(job__project=project.slug, model=chunk.model, state__in=IN_FLIGHT).exclude(pk=chunk.pk).exists()
        queue.budget, queue.window = decide.after_refusal(queue.budget, queue.window)
        queue.refusals += 1
        queue.last_refusal_at = now
        queue.save(update_fields=["budget", "window", "refusals", "last_refusal_at"])
        wait = decide.backoff(hits, backoff_seconds())
        moved = pending.update(
            state=Chunk.State.QUEUED, submission=F("submission") + 1, token_limit_hits=hits, batch_id="",
            batch_status="", create_started_at=None, not_before=now + wait, error=message[:2000],
            claimed_by="", claim_until=None,
        )
        if moved == 1:
            budget = f"{queue.budget:,} estimated tokens" if queue.budget is not None else f"{queue.window} chunk(s) in flight"
            JobEvent.objects.create(
                job_id=chunk.job_id, kind="token_limit", chunk_number=chunk.number,
                message=f"{what} was refused (token_limit_exceeded: {message[:300]}). "
                        f"The chunk is back in the queue for {int(wait.total_seconds())} s; not counted as an attempt. "
                        f"The budget for {chunk.model or 'its model'} is now {budget}.",
            )
    if moved == 1 and decide.split_after_refusal(queue.budget, hits, alone, chunk.requests):
        if Chunk.objects.filter(pk=chunk.pk, state=Chunk.State.QUEUED).update(state=Chunk.State.SUBMITTING) == 1:
            merge.split(Chunk.objects.select_related("job").get(pk=chunk.pk), "refused while alone in the queue.")
    return moved == 1
