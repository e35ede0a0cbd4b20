"""Triggered background work, through Django's Tasks framework (``django.tasks``).

The configured backend runs these (``django_tasks_db.DatabaseBackend`` and ``manage.py run_worker`` by
default); a bigger deployment swaps the backend in ``TASKS``, not this code. Arguments are plain
strings (they are stored as JSON by the database backend). A webhook's refresh is urgent: it goes to
:data:`~batches.taskqueue.URGENT_QUEUE`, which the worker serves before anything else.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.tasks import task

from .store import store_counts
from .store import upsert_batches
from ..models import WebhookDelivery
from ..projects import get_project
from ..taskqueue import URGENT_PRIORITY, URGENT_QUEUE
from ..upstream import UpstreamNotFound
from ..upstream.registry import client_for

logger = logging.getLogger(__name__)


@task(queue_name=URGENT_QUEUE, priority=URGENT_PRIORITY)
def refresh_batch(project_slug: str, batch_id: str, webhook_id: str = "", event_type: str = "") -> str:
    """Retrieve one batch with its project's client and write it into the index (with a sample and
    the ``batches_changed`` signal). A webhook enqueues this: the event only says "go and look"
    (NOTES.md §6.4). The delivery's ``webhook_id`` is recorded as handled in the same transaction as
    the index write, so a delivery whose refresh never committed (an upstream fault, a worker killed
    mid-task) is processed again when the provider delivers it again. Returns the batch's status, or
    why nothing was written. An upstream fault fails the task (the backend records it); the periodic
    sync catches the batch up anyway."""
    project = get_project(project_slug)
    if project is None:
        logger.warning("refresh_batch: project %r is no longer configured; nothing done", project_slug[:40])
        return "unknown project"
    try:
        batch = client_for(project).retrieve_batch(batch_id)
    except UpstreamNotFound:
        logger.warning("refresh_batch: batch %r of project %s not found upstream", batch_id[:200], project.slug)
        _handled(project.slug, webhook_id, event_type, batch_id)  # asking again would find nothing either
        return "not found"
    with transaction.atomic():
        changes = upsert_batches(project.slug, [batch], samples=True, source="webhook")
        _handled(project.slug, webhook_id, event_type, batch_id)
    store_counts(project.slug)
    logger.info(
        "refresh_batch: %s/%s is %s%s", project.slug, batch.id, batch.status,
        f" (was {changes[batch.id][0]})" if batch.id in changes and changes[batch.id][0] else "",
    )
    return batch.status


def _handled(project: str, webhook_id: str, event_type: str, batch_id: str) -> None:
    if webhook_id:
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(project=project, webhook_id=webhook_id, event_type=event_type, batch_id=batch_id)],
            ignore_conflicts=True,  # two deliveries of one id refreshed at once: one row
        )
