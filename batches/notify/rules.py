"""From index changes to ``Notification`` rows: who must be told what.

The sync and the webhooks send ``batches_changed`` after each committed index change
(``batches/index/signals.py``); :func:`on_batches_changed` turns it into rows. A row's unique key
(project, batch, event, recipient) is the exactly-once guarantee: a duplicate trigger (a webhook
retried, two syncs overlapping, several instances) inserts nothing, and only the insert that created
a row enqueues its send. Nothing here talks to a mail server or a webhook: that is the task's job.

Events: a finished batch's status ("completed", "failed", "expired", "cancelled") for the people
watching it; "failed"/"expired" for ``failed_or_expired`` rules; "failure_rate" for
``failure_rate_above`` rules; "at_risk" for ``at_risk`` rules (see :func:`notify_at_risk`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from ..models import BatchRecord, Notification, NotificationRule, Watch
from ..index.records import batch_from_record, finished_datetime
from ..index.flags import flagged_ids
from ..vocabulary import TERMINAL_STATUSES
from .tasks import enqueue_send

logger = logging.getLogger(__name__)

# Rules speak about batches that finish after the rule was made, so the first backfill of years of
# history does not mail every old failure. Upstream and local clocks differ: allow this much slack.
CLOCK_SLACK = timedelta(minutes=5)


def on_batches_changed(sender, project: str, changes: dict, **kwargs) -> None:
    """The ``batches_changed`` receiver. It must never break the sync or a webhook reply that sent
    the signal, so a bug here is logged, not raised."""
    try:
        notifications_for_changes(project, changes)
    except Exception:
        logger.exception("notifications for %d change(s) in project %s could not be recorded", len(changes), project)


def on_sync_pass_finished(sender, project: str, **kwargs) -> None:
    """The ``sync_pass_finished`` receiver: tell the "batch at risk" rules about every batch whose ETA
    is now past its expiry (the notifications keep one message per batch and recipient, so repeating a
    batch is harmless). A bug here is logged, never raised into the sync."""
    try:
        notify_at_risk(project, flagged_ids(project, "at-risk"))
    except Exception:
        logger.exception("at-risk notifications for project %s could not be recorded", project)


def notifications_for_changes(project: str, changes: dict[str, tuple[str | None, str]], now: datetime | None = None) -> list[int]:
    """Record the notifications ``changes`` ({batch_id: (old status or None, new status)}) call for;
    returns the ids of the rows this call created (each enqueued for sending after commit)."""
    now = now or timezone.now()
    finished = {batch_id: new for batch_id, (old, new) in changes.items() if new != old and new in TERMINAL_STATUSES}
    if not finished:
        return []
    records = {r.batch_id: r for r in BatchRecord.objects.filter(project=project, batch_id__in=list(finished))}
    rules = list(NotificationRule.objects.filter(project=project).exclude(kind=NotificationRule.Kind.AT_RISK))
    watches: dict[str, list[Watch]] = {}
    for watch in Watch.objects.filter(project=project, batch_id__in=list(finished)):
        watches.setdefault(watch.batch_id, []).append(watch)

    created: list[int] = []
    for batch_id, status in finished.items():
        record = records.get(batch_id)
        for watch in watches.get(batch_id, ()):
            created += _record(project, batch_id, status, f"email:{watch.email}", "you asked to be notified when this batch finishes", now)
        finished_at = _finished_at(record) or now
        for rule in rules:
            if finished_at < rule.created_at - CLOCK_SLACK:
                continue  # finished before the rule existed (history coming in from a backfill)
            recipient = f"{rule.channel}:{rule.target}"
            if rule.kind == NotificationRule.Kind.FAILED_OR_EXPIRED and status in ("failed", "expired"):
                created += _record(project, batch_id, status, recipient, f"rule: {rule.get_kind_display()}", now)
            elif rule.kind == NotificationRule.Kind.FAILURE_RATE_ABOVE and record is not None:
                rate = failure_rate(record)
                if rate is not None and rule.threshold is not None and rate > rule.threshold:
                    reason = f"rule: failure rate {rate:.1f} % is above {rule.threshold:g} %"
                    created += _record(project, batch_id, "failure_rate", recipient, reason, now)
    return created


def notify_at_risk(project: str, batch_ids: Iterable[str], now: datetime | None = None) -> list[int]:
    """The hook for the "batch at risk" rule: call it with batch ids that are (or turned) at risk.

    Calling it again for the same batch is harmless (the unique key keeps one row per recipient), so
    the caller may pass every batch currently at risk after each pass: the sync does after each
    pass, and ``manage.py send_notifications`` on each sweep, both with the oversight ETA's verdict
    (``batches.index.flags.flagged_ids(project, "at-risk")``)."""
    now = now or timezone.now()
    rules = list(NotificationRule.objects.filter(project=project, kind=NotificationRule.Kind.AT_RISK))
    created: list[int] = []
    for batch_id in batch_ids:
        for rule in rules:
            created += _record(project, batch_id, "at_risk", f"{rule.channel}:{rule.target}", f"rule: {rule.get_kind_display()}", now)
    return created


def failure_rate(record: BatchRecord) -> float | None:
    """Failed requests as a percentage of all the batch's requests (None for an empty batch)."""
    if record.total_requests <= 0:
        return None
    return 100.0 * record.failed_requests / record.total_requests


def notification_record(project: str, batch_id: str, event: str, recipient: str, reason: str, now: datetime) -> int | None:
    """Insert-or-ignore one row: its id when this call created it, None when the key already existed.

    A plain INSERT guarded by the unique key, in a savepoint: of two racing inserts (two processes,
    two threads) the database lets exactly one commit; the other gets the IntegrityError and
    enqueues nothing."""
    try:
        with transaction.atomic():
            row = Notification.objects.create(
                project=project, batch_id=batch_id, event=event, recipient=recipient[:520],
                reason=reason[:300], next_attempt_at=now,
            )
    except IntegrityError:
        return None
    return row.pk


def _record(project: str, batch_id: str, event: str, recipient: str, reason: str, now: datetime) -> list[int]:
    row_id = notification_record(project, batch_id, event, recipient, reason, now)
    if row_id is None:
        return []
    # After commit: the worker must find the row, and a rolled-back trigger must send nothing.
    transaction.on_commit(lambda: enqueue_send(row_id))
    return [row_id]


def _finished_at(record: BatchRecord | None) -> datetime | None:
    return finished_datetime(batch_from_record(record)) if record is not None else None
