"""Reads for the job pages: progress over all requests, queue use per model, cost, ETA, summary."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from ..oversight.pricing import money, price_usage
from ..projects import Project
from .models import Chunk, Job, ModelQueue

IN_FLIGHT = (Chunk.State.SUBMITTING, Chunk.State.SUBMITTED, Chunk.State.MERGING)


@dataclass
class Progress:
    total: int
    succeeded: int
    failed: int
    running: int
    waiting: int
    to_retry: int

    @property
    def pending(self) -> int:
        return self.total - self.succeeded - self.failed

    def width(self, part: int) -> int:
        """A segment's width in whole percent (CSS classes w-0..w-100: no inline style)."""
        return round(100 * part / self.total) if self.total else 0

    @property
    def segments(self) -> list[tuple[str, str, int, int]]:
        return [
            ("ok", "succeeded", self.succeeded, self.width(self.succeeded)),
            ("bad", "failed for good", self.failed, self.width(self.failed)),
            ("run", "running", self.running, self.width(self.running)),
            ("retry", "to retry", self.to_retry, self.width(self.to_retry)),
            ("wait", "waiting", self.waiting, self.width(self.waiting)),
        ]


def progress(job: Job) -> Progress:
    homes = job.chunks.filter(home__isnull=True).aggregate(ok=Sum("succeeded"), bad=Sum("failed"), retry=Sum("retrying"))
    flight = job.chunks.filter(state__in=IN_FLIGHT).aggregate(
        all=Sum("requests"), again=Sum("requests", filter=Q(attempt__gt=1)))
    succeeded, failed, retrying = homes["ok"] or 0, homes["bad"] or 0, homes["retry"] or 0
    running, running_again = flight["all"] or 0, flight["again"] or 0
    to_retry = max(retrying - running_again, 0)
    waiting = max(job.total_requests - succeeded - failed - retrying - (running - running_again), 0)
    return Progress(job.total_requests, succeeded, failed, running, waiting, to_retry)


@dataclass
class QueueUse:
    model: str
    queued_tokens: int
    budget: int | None
    window: int
    chunks: int

    @property
    def sentence(self) -> str:
        if self.budget is not None:
            return f"{_short_number(self.queued_tokens)} of {_short_number(self.budget)} estimated tokens queued for {self.model}"
        return (f"{self.chunks} chunk(s) of {self.model} in flight; no budget configured, "
                f"so up to {self.window} at a time as learned from the API")


def _short_number(value: int) -> str:
    for size, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if value >= size:
            return f"{value / size:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def queue_use(project: Project, job: Job) -> list[QueueUse]:
    models = [job.models_used] if job.models_used else [""]
    uses = []
    for model in models:
        row = ModelQueue.objects.filter(project=project.slug, model=model).first()
        flight = Chunk.objects.filter(job__project=project.slug, model=model, state__in=IN_FLIGHT[:2]).aggregate(
            tokens=Sum("estimated_tokens"), chunks=Count("pk"))
        configured = project.limits.budget_for(model)
        budget = row.budget if row and row.budget is not None else configured
        uses.append(QueueUse(model or "(no model)", flight["tokens"] or 0, budget, row.window if row else 1, flight["chunks"]))
    return uses


@dataclass
class Cost:
    so_far: Decimal | None
    estimated_total: Decimal | None
    reason: str = ""

    @property
    def so_far_display(self) -> str:
        return money(self.so_far) if self.so_far is not None else "no price"

    @property
    def total_display(self) -> str:
        return money(self.estimated_total) if self.estimated_total is not None else "not known yet"


def cost(job: Job, done: int) -> Cost:
    usage = job.chunks.exclude(input_tokens__isnull=True).aggregate(
        i=Sum("input_tokens"), c=Sum("cached_tokens"), o=Sum("output_tokens"), n=Count("pk"))
    if not usage["n"]:
        return Cost(None, None, "No batch of this job has reported token usage yet.")
    price = price_usage(job.models_used, usage["i"], usage["c"], usage["o"])
    if not price.known:
        return Cost(None, None, price.reason)
    total = price.amount * job.total_requests / done if done else None
    return Cost(price.amount, total)


def eta(job: Job, prog: Progress):
    """When the job should end at the pace observed since it started (None when unknown)."""
    done = prog.succeeded + prog.failed
    if job.ended or not job.started_at or done == 0 or prog.pending == 0:
        return None
    elapsed = (timezone.now() - job.started_at).total_seconds()
    if elapsed <= 0:
        return None
    return timezone.now() + timedelta(seconds=elapsed * prog.pending / done)


def in_flight(job: Job) -> bool:
    return job.chunks.filter(state__in=IN_FLIGHT).exists()


def summary(job: Job) -> dict:
    prog = progress(job)
    priced = cost(job, prog.succeeded + prog.failed)
    batches = [
        {"id": chunk.batch_id, "status": chunk.batch_status, "requests": chunk.requests, "attempt": chunk.attempt}
        for chunk in job.chunks.exclude(batch_id="").order_by("number")
    ]
    return {
        "id": job.pk,
        "name": job.name,
        "status": job.status,
        "requests": {"total": prog.total, "succeeded": prog.succeeded, "failed": prog.failed, "pending": prog.pending},
        "batches": batches,
        "cost_usd": float(priced.so_far) if priced.so_far is not None else None,
    }


def job_for_batch(project: str, batch_id: str) -> Job | None:
    chunk = Chunk.objects.filter(job__project=project, batch_id=batch_id).select_related("job").first()
    return chunk.job if chunk else None
