"""The health of the task queue (django-tasks-db's ``DBTaskResult`` rows), for the worker, ``/metrics``
and ``/readyz`` (issue #23 items 2 and 4).

* **Urgent first.** Work that keeps the index fresh (a webhook's refresh; job scheduling) goes to
  :data:`URGENT_QUEUE` with :data:`URGENT_PRIORITY`; the worker claims by priority, so it never waits
  behind a row of notification sends. A notification's *retry* gets :data:`RETRY_PRIORITY`, below fresh
  work, so old failures do not go before new sends either.
* **Age of the oldest waiting task**, per queue (:func:`oldest_waits`): since it was enqueued, or since
  its ``run_after`` for a deferred retry.
* **Tasks whose worker died** (:func:`requeue_orphans`): a RUNNING row whose worker's heartbeat has gone
  stale (``manage.py run_worker`` beats every ``DASHBOARD_WORKER_HEARTBEAT_SECONDS``; four missed beats is
  death, as ``/readyz`` counts it) is put back to READY with one conditional UPDATE, so exactly one of
  several sweeping workers requeues it. A task claimed :data:`MAX_CLAIMS` times whose workers all died is
  marked FAILED instead, so a task that kills its worker (out of memory) cannot loop forever. Tasks must
  therefore be safe to run twice; ours are (a refresh rewrites the index row, a send claims its
  notification row first).
* **Stuck tasks** (:func:`stuck_tasks`): RUNNING with a dead worker (not yet requeued), or running longer
  than ``DASHBOARD_TASK_STUCK_SECONDS``.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.db.models import Min
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max

from .conf import conf
from .models import WorkerHeartbeat

logger = logging.getLogger("batches.worker")

URGENT_QUEUE = "urgent"
URGENT_PRIORITY = 50
RETRY_PRIORITY = -10
#: Claims after which a task whose workers keep dying is failed instead of run again.
MAX_CLAIMS = 3
#: A worker is gone after this many missed heartbeats (``/readyz`` counts the same).
WORKER_STALE_INTERVALS = 4


def worker_stale_after() -> timedelta:
    return timedelta(seconds=WORKER_STALE_INTERVALS * conf().worker_heartbeat_seconds)


def _dead_worker_tasks(now: datetime) -> list[dict]:
    """RUNNING rows whose claiming worker (the last id in ``worker_ids``) shows no fresh heartbeat. A
    worker without any heartbeat row (a plain ``db_worker``) counts as dead once its task has run longer
    than the stale limit."""
    stale = now - worker_stale_after()
    running = list(DBTaskResult.objects.running().values("id", "worker_ids", "started_at", "task_path"))
    if not running:
        return []
    beats = dict(WorkerHeartbeat.objects.values_list("worker_id", "last_seen"))
    dead = []
    for row in running:
        worker = row["worker_ids"][-1] if row["worker_ids"] else ""
        seen = beats.get(worker)
        if (seen is not None and seen < stale) or (seen is None and row["started_at"] and row["started_at"] < stale):
            dead.append(row)
    return dead


def requeue_orphans(now: datetime | None = None) -> dict[str, int]:
    """Run again (or fail, after :data:`MAX_CLAIMS`) every task whose worker died. Safe with several
    workers sweeping at once: each row changes only if it is still the RUNNING claim that was seen."""
    now = now or timezone.now()
    outcome = {"requeued": 0, "failed": 0}
    for row in _dead_worker_tasks(now):
        claim = DBTaskResult.objects.filter(pk=row["id"], status="RUNNING", started_at=row["started_at"])
        if len(row["worker_ids"]) >= MAX_CLAIMS:
            changed = claim.update(
                status="FAILED", finished_at=now, exception_class_path="batches.taskqueue.WorkerDied",
                traceback=f"The worker running this task stopped {len(row['worker_ids'])} times "
                          f"({', '.join(row['worker_ids'])}); it is not run again.",
            )
            kind = "failed"
        else:
            changed = claim.update(status="READY", started_at=None)
            kind = "requeued"
        if changed:
            outcome[kind] += 1
            logger.warning("task %s (%s): its worker %s stopped; %s", row["id"], row["task_path"],
                           row["worker_ids"][-1] if row["worker_ids"] else "?", kind)
    return outcome


def oldest_waits(now: datetime | None = None) -> dict[str, float]:
    """``{queue: seconds}``: how long the oldest task ready to run in each queue has waited."""
    now = now or timezone.now()
    ready = DBTaskResult.objects.ready()
    forever = get_date_max()
    waits: dict[str, float] = {}
    fresh = ready.filter(run_after=forever).values("queue_name").annotate(since=Min("enqueued_at"))
    deferred = ready.exclude(run_after=forever).values("queue_name").annotate(since=Min("run_after"))
    for row in [*fresh, *deferred]:
        seconds = max((now - row["since"]).total_seconds(), 0.0)
        waits[row["queue_name"]] = max(waits.get(row["queue_name"], 0.0), seconds)
    return waits


def stuck_tasks(now: datetime | None = None) -> list[dict]:
    """RUNNING tasks that will not finish on their own: their worker died, or they have run longer than
    ``DASHBOARD_TASK_STUCK_SECONDS``."""
    now = now or timezone.now()
    dead = {row["id"]: {**row, "why": "its worker stopped"} for row in _dead_worker_tasks(now)}
    too_long = now - timedelta(seconds=conf().task_stuck_seconds)
    for row in DBTaskResult.objects.running().filter(started_at__lt=too_long).values("id", "worker_ids", "started_at", "task_path"):
        dead.setdefault(row["id"], {**row, "why": "it has run too long"})
    return list(dead.values())
