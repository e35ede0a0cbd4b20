"""Triggered background work, through Django's Tasks framework (``django.tasks``).

The configured backend runs these (``django_tasks_db.DatabaseBackend`` and ``manage.py db_worker`` by
default); a bigger deployment swaps the backend in ``TASKS``, not this code. Arguments are plain
strings (they are stored as JSON by the database backend).
"""

from __future__ import annotations

import logging

from django.tasks import task

from .index.store import store_counts
from .index.store import upsert_batches
from .projects import get_project
from .upstream import UpstreamNotFound
from .upstream.registry import client_for

logger = logging.getLogger(__name__)


@task()
def refresh_batch(project_slug: str, batch_id: str) -> str:
    """Retrieve one batch with its project's client and write it into the index (with a sample and
    the ``batches_changed`` signal). A webhook enqueues this: the event only says "go and look"
    (NOTES.md §6.4). Returns the batch's status, or why nothing was written. An upstream fault
    fails the task (the backend records it); the periodic sync catches the batch up anyway."""
    project = get_project(project_slug)
    if project is None:
        logger.warning("refresh_batch: project %r is no longer configured; nothing done", project_slug[:40])
        return "unknown project"
    try:
        batch = client_for(project).retrieve_batch(batch_id)
    except UpstreamNotFound:
        logger.warning("refresh_batch: batch %r of project %s not found upstream", batch_id[:200], project.slug)
        return "not found"
    changes = upsert_batches(project.slug, [batch], samples=True, source="webhook")
    store_counts(project.slug)
    logger.info(
        "refresh_batch: %s/%s is %s%s", project.slug, batch.id, batch.status,
        f" (was {changes[batch.id][0]})" if batch.id in changes and changes[batch.id][0] else "",
    )
    return batch.status
