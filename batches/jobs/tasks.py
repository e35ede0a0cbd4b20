"""The scheduler runs in the task worker: one chain of passes per project (``advance_jobs``).

A pass (:func:`batches.jobs.passes.run_pass`) ends by enqueuing the next one ``DASHBOARD_JOBS_TICK_SECONDS``
later (default ``DASHBOARD_SYNC_SECONDS``) while the project has unfinished jobs, so a chunk's end is
noticed within one sync interval even without the sync. It is noticed at once when the sync or a
webhook's refresh reports it: :func:`on_batches_changed` wakes the chain. Wake-ups and the chain share
a sequence number (:class:`~batches.jobs.models.ProjectTick`): only the pass that moves it on enqueues
the next, so extra wake-ups never multiply the chain.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import timedelta

from django.db import transaction
from django.tasks import default_task_backend, task
from django.utils import timezone

from ..conf import conf
from ..projects import get_project
from ..taskqueue import URGENT_PRIORITY, URGENT_QUEUE
from ..upstream import TERMINAL_STATUSES, client_for
from .models import Chunk, ProjectTick
from .passes import SOURCE, has_work, run_pass

logger = logging.getLogger("batches.jobs")



def tick_seconds() -> float:
    return conf().jobs_tick_seconds


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# Scheduling keeps jobs moving: the urgent queue, claimed before notification sends (batches/taskqueue.py).
@task(queue_name=URGENT_QUEUE, priority=URGENT_PRIORITY)
def advance_jobs(project_slug: str, seq: int) -> str:
    """One scheduling pass over the project's jobs, then the next pass if there is work left."""
    project = get_project(project_slug)
    if project is None:
        return "unknown project"
    try:
        report = run_pass(project, client_for(project), worker_name())
        outcome = (f"polled {report.polled}, merged {report.merged}, refused {report.refused}, "
                   f"submitted {len(report.submitted)}, finished {len(report.finished)}")
    except Exception:
        # A bug or a database hiccup must not end the chain: the next pass tries again.
        logger.exception("jobs pass of project %s failed", project_slug)
        outcome = "pass failed"
    ProjectTick.objects.filter(project=project_slug).update(last_pass_at=timezone.now())
    _continue(project_slug, seq)
    return outcome


def _continue(project_slug: str, seq: int) -> None:
    if not has_work(project_slug) or not default_task_backend.supports_defer:
        return
    if ProjectTick.objects.filter(project=project_slug, seq=seq).update(seq=seq + 1) == 1:
        advance_jobs.using(run_after=timezone.now() + timedelta(seconds=tick_seconds())).enqueue(project_slug, seq + 1)


def wake(project_slug: str) -> None:
    """Run a pass soon (after the current transaction commits)."""
    tick, _ = ProjectTick.objects.get_or_create(project=project_slug)
    seq = tick.seq
    transaction.on_commit(lambda: advance_jobs.enqueue(project_slug, seq))


def on_batches_changed(sender, project: str, changes: dict, **kwargs) -> None:
    """The sync or a webhook saw batches end: if one is a chunk's, merge it now, not at the next pass."""
    if sender == SOURCE:
        return
    try:
        ended = [batch_id for batch_id, (_old, new) in changes.items() if new in TERMINAL_STATUSES]
        if ended and Chunk.objects.filter(job__project=project, batch_id__in=ended, state=Chunk.State.SUBMITTED).exists():
            wake(project)
    except Exception:
        logger.exception("jobs: could not react to %d batch change(s) in project %s", len(changes), project)
