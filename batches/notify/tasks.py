"""Sending notifications through the task queue (Django Tasks; ``manage.py db_worker`` runs them).

One task per ``Notification`` row. Several workers (and the retry sweep) may hold the same row id;
each first *claims* the row with one conditional UPDATE (pending and due → sending) and acts only
when exactly one row changed, so one row is sent by one worker once. A failure puts the row back to
pending with ``next_attempt_at`` pushed out (exponential backoff) until
``DASHBOARD_NOTIFY_MAX_ATTEMPTS``, then marks it failed.

Retries: when the task backend can defer work (``supports_defer``: django-tasks-db can), the retry is
enqueued with ``run_after=next_attempt_at``. Otherwise (the immediate backend, a backend without
defer) ``manage.py send_notifications`` sweeps due rows: run it every minute (cron) or with ``--loop``.
The sweep also rescues rows whose worker died mid-send, and enqueues sends whose enqueue was lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from ..conf import conf
from django.db.models import F
from django.tasks import default_task_backend, task
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from ..metrics import NOTIFICATIONS
from ..models import BatchRecord, Notification
from ..projects import get_project
from ..taskqueue import RETRY_PRIORITY
from .channels import ChannelError, Message, channel_for

logger = logging.getLogger(__name__)

#: First retry after this long; each later one waits four times longer, up to BACKOFF_MAX.
BACKOFF_FIRST = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
#: A row claimed longer ago than this is taken to belong to a worker that died: every send is over well
#: before (a webhook has DASHBOARD_NOTIFY_SEND_SECONDS in all, mail EMAIL_TIMEOUT per step).
STALE_CLAIM = timedelta(minutes=2)

EVENT_LABELS = {
    "completed": "completed",
    "failed": "failed",
    "expired": "expired",
    "cancelled": "cancelled",
    "at_risk": "at risk of expiring unfinished",
    "failure_rate": "high failure rate",
}


@task()
def notification_send(notification_id: int) -> str:
    """Send one notification row (if it is still pending and due); returns what happened."""
    return deliver(notification_id)


def enqueue_send(notification_id: int, run_after: datetime | None = None) -> None:
    """Queue the send. A lost enqueue is not fatal: the sweep finds pending rows that are due."""
    try:
        if run_after is not None and default_task_backend.supports_defer:
            # A retry goes after fresh work (batches/taskqueue.py): old failures must not delay new sends.
            notification_send.using(run_after=run_after, priority=RETRY_PRIORITY).enqueue(notification_id)
        elif run_after is None:
            notification_send.enqueue(notification_id)
    except Exception:
        logger.exception("could not enqueue notification %s; the send_notifications sweep will pick it up", notification_id)


def backoff(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: 30 s, 2 min, 8 min, 32 min, then hourly."""
    return min(BACKOFF_FIRST * (4 ** max(attempts - 1, 0)), BACKOFF_MAX)


def deliver(notification_id: int, now: datetime | None = None) -> str:
    now = now or timezone.now()
    claimed = Notification.objects.filter(
        pk=notification_id, state=Notification.State.PENDING, next_attempt_at__lte=now
    ).update(state=Notification.State.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    if claimed != 1:
        return _not_claimed(notification_id, now)
    row = Notification.objects.get(pk=notification_id)
    channel = row.recipient.partition(":")[0]
    try:
        channel_for(row.recipient).send(message_for(row))
    except ChannelError as err:
        NOTIFICATIONS.labels(channel=channel, outcome="failed").inc()
        return _failed(row, str(err), now, permanent=err.permanent)
    except Exception as err:  # a bug or an unexpected library error: still recorded, still retried
        logger.exception("notification %s: unexpected error while sending", row.pk)
        NOTIFICATIONS.labels(channel=channel, outcome="failed").inc()
        return _failed(row, f"Unexpected error: {type(err).__name__}.", now)
    NOTIFICATIONS.labels(channel=channel, outcome="sent").inc()
    Notification.objects.filter(pk=row.pk).update(state=Notification.State.SENT, sent_at=timezone.now(), last_error="")
    logger.info("notification %s sent: %s %s %s", row.pk, row.project, row.batch_id, row.event)
    return "sent"


def _not_claimed(notification_id: int, now: datetime) -> str:
    """Sent already, being sent by another worker, or not yet due. A row still "sending" may belong to a
    worker that was killed (this task is then its re-run, batches/taskqueue.py): look again once that
    claim has gone stale, so the notification is not left to the sweep alone."""
    claimed_at = (
        Notification.objects.filter(pk=notification_id, state=Notification.State.SENDING)
        .values_list("claimed_at", flat=True).first()
    )
    if claimed_at is None:
        return "not claimed"
    if claimed_at < now - STALE_CLAIM:
        rescued = Notification.objects.filter(
            pk=notification_id, state=Notification.State.SENDING, claimed_at=claimed_at
        ).update(state=Notification.State.PENDING, next_attempt_at=now)
        return deliver(notification_id, now) if rescued else "not claimed"
    enqueue_send(notification_id, run_after=claimed_at + STALE_CLAIM)
    return "claimed elsewhere; looking again later"


def _failed(row: Notification, error: str, now: datetime, *, permanent: bool = False) -> str:
    max_attempts = max(conf().notify_max_attempts, 1)
    if permanent or row.attempts >= max_attempts:
        Notification.objects.filter(pk=row.pk).update(state=Notification.State.FAILED, last_error=error)
        logger.warning("notification %s failed for good after %d attempts: %s", row.pk, row.attempts, error)
        return "failed"
    next_attempt = now + backoff(row.attempts)
    Notification.objects.filter(pk=row.pk).update(state=Notification.State.PENDING, last_error=error, next_attempt_at=next_attempt)
    logger.info("notification %s attempt %d failed, retrying at %s: %s", row.pk, row.attempts, next_attempt.isoformat(), error)
    enqueue_send(row.pk, run_after=next_attempt)
    return "retry"


def send_due(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """The retry sweep (``manage.py send_notifications``): rescue stale claims, then send every due
    pending row directly (the claim keeps it to one sender even while a queued task races it)."""
    now = now or timezone.now()
    rescued = Notification.objects.filter(state=Notification.State.SENDING, claimed_at__lt=now - STALE_CLAIM).update(
        state=Notification.State.PENDING, next_attempt_at=now
    )
    outcomes: dict[str, int] = {"rescued": rescued}
    due = Notification.objects.filter(state=Notification.State.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at")
    for row_id in list(due.values_list("pk", flat=True)[:limit]):
        outcome = deliver(row_id, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


def batch_link(project: str, batch_id: str) -> str:
    """The batch page's absolute URL, from ``DASHBOARD_PUBLIC_URL`` (which includes any path prefix)."""
    return public_url(reverse("batches:detail", args=[project, batch_id]))


def public_url(path: str) -> str:
    """The absolute URL of a dashboard path (from ``reverse``) under ``DASHBOARD_PUBLIC_URL``."""
    prefix = get_script_prefix()
    if path.startswith(prefix):
        path = path[len(prefix):]
    return f"{conf().public_url.rstrip('/')}/{path.lstrip('/')}"


#: Events about something other than one batch ("budget", "drift" from batches/costs/, a job's from
#: batches/jobs/) register how their message reads, and how the event reads in the history, by the
#: event's first ``:``-separated part.
_MESSAGES: dict[str, Callable[[Notification], Message]] = {}
_LABELS: dict[str, Callable[[str], str]] = {}


def register_message(kind: str, build: Callable[[Notification], Message], label: Callable[[str], str]) -> None:
    _MESSAGES[kind] = build
    _LABELS[kind] = label


def event_label(event: str) -> str:
    """What a notification is about, in words (the notification history shows it; ``budget:2026-12:80``
    reads as its app words it)."""
    label = _LABELS.get(event.partition(":")[0])
    if label is not None:
        return label(event)
    return EVENT_LABELS.get(event, event.replace("_", " "))


def message_for(row: Notification) -> Message:
    """The message, written at send time from the index's current view of the batch."""
    build = _MESSAGES.get(row.event.partition(":")[0])
    if build is not None:
        return build(row)
    project = get_project(row.project)
    project_name = project.name if project else row.project
    record = BatchRecord.objects.filter(project=row.project, batch_id=row.batch_id).first()
    label = EVENT_LABELS.get(row.event, row.event)
    subject = f"[{project_name}] Batch {row.batch_id}: {label}"
    lines = [_sentence(row, record)]
    if row.reason:
        lines.append(f"Why you get this: {row.reason}.")
    return Message(subject=subject, body="\n".join(lines), link=batch_link(row.project, row.batch_id))


def _sentence(row: Notification, record: BatchRecord | None) -> str:
    bid = row.batch_id
    if record is None:
        return f"Batch {bid} is {EVENT_LABELS.get(row.event, row.event)}."
    total, done, failed = record.total_requests, record.completed_requests, record.failed_requests
    if row.event == "completed":
        return f"Batch {bid} completed: {done} of {total} requests succeeded, {failed} failed."
    if row.event == "failed":
        return f"Batch {bid} failed: the API rejected it, and no requests were run."
    if row.event == "expired":
        return f"Batch {bid} expired before it finished: {done} of {total} requests completed, the rest were not run."
    if row.event == "cancelled":
        return f"Batch {bid} was cancelled: {done} of {total} requests had completed."
    if row.event == "at_risk":
        return (f"Batch {bid} is at risk: at its current pace it will not finish before its completion window "
                f"ends ({done + failed} of {total} requests done).")
    if row.event == "failure_rate":
        rate = 100.0 * failed / total if total else 0.0
        return f"Batch {bid} finished ({record.status}) with {failed} of {total} requests failed ({rate:.1f} %)."
    return f"Batch {bid}: {row.event}."
