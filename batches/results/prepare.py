"""Results prepared when a batch ends, so nobody waits for the join on the page.

As soon as the index learns that a batch finished (a sync pass or a webhook's refresh: the
``batches_changed`` signal), :func:`on_batches_changed` enqueues :func:`prepare_results`, which the task
worker runs: it retrieves the batch and builds its kept join (``kept.py``; the join's unique claim keeps
two workers from building it twice), then removes joins older than :data:`KEEP_DAYS` (a batch's files
expire after 30 days by default, NOTES.md §2.4: its join goes with them).

A page view that comes before the join is ready does not build a large one itself
(:func:`page_or_preview`): a batch of more than :data:`INLINE_BUILD_MAX` requests gets a preview at once
(its request counts and the first results as they stand in the output file), the preparation is asked for
again in case the signal was missed, and the page polls until the full view is ready. A small batch's join
takes well under the page's budget and is built by the view, as before.
"""

from __future__ import annotations

import logging
from contextlib import closing
from datetime import timedelta

from django.core.cache import cache
from django.tasks import task
from django.utils import timezone

from ..index.records import batch_from_record
from ..models import BatchRecord, ResultsJoin
from ..projects import Project, get_project
from ..upstream import TERMINAL_STATUSES, Batch, UpstreamNotFound
from ..upstream.registry import client_for
from .kept import kept_join, ready_join
from .lines import file_objects
from .page import PER_PAGE, ResultsPage, results_page
from .records import shown_row

logger = logging.getLogger(__name__)

#: Requests up to which a page view builds the join itself (about 0.1 s for 5,000 on 2 cores).
INLINE_BUILD_MAX = 5_000
#: Joins are kept this long after they were built (a batch's files expire after 30 days by default).
KEEP_DAYS = 30
#: A page view asks for the preparation again at most this often per batch (per cache).
ASK_AGAIN_SECONDS = 60


def has_results(batch: Batch) -> bool:
    """Whether the batch has anything for its results page: result files, or requests that never ran."""
    return bool(batch.output_file_id or batch.error_file_id or batch.status in ("cancelled", "expired"))


@task()
def prepare_results(project_slug: str, batch_id: str) -> str:
    """Build the kept join of a finished batch (in the task worker). Returns what was done."""
    project = get_project(project_slug)
    if project is None:
        return "unknown project"
    record = BatchRecord.objects.filter(project=project.slug, batch_id=batch_id).first()
    if record is not None and record.status in TERMINAL_STATUSES:
        batch = batch_from_record(record)  # what the index just learned: no second upstream call
    else:
        try:
            batch = client_for(project).retrieve_batch(batch_id)
        except UpstreamNotFound:
            return "not found"
    if not batch.is_terminal or not has_results(batch):
        return "nothing to prepare"
    join = kept_join(project, batch)
    pruned = prune_old_joins()
    if pruned:
        logger.info("results: removed %d joins older than %d days", pruned, KEEP_DAYS)
    if join is None:
        return "being built by another worker"
    return f"ready: {join.total} requests in {join.build_seconds} s"


def ask_for_preparation(project_slug: str, batch_id: str) -> bool:
    """Enqueue :func:`prepare_results` unless it was asked for in the last :data:`ASK_AGAIN_SECONDS`."""
    if not cache.add(f"results-prepare:{project_slug}:{batch_id}", 1, ASK_AGAIN_SECONDS):
        return False
    prepare_results.enqueue(project_slug, batch_id)
    return True


def on_batches_changed(sender, *, project: str, changes: dict, **kwargs) -> None:
    """A batch that just finished gets its results prepared. A batch first seen already finished is
    left alone when a sync pass found it (a backfill would build every old batch's join), not when a
    webhook did (it finished just now)."""
    for batch_id, (old, new) in changes.items():
        if new not in TERMINAL_STATUSES:
            continue
        if old in TERMINAL_STATUSES or (old is None and sender != "webhook"):
            continue
        ask_for_preparation(project, batch_id)


def prune_old_joins(*, now=None) -> int:
    """Delete the joins built more than :data:`KEEP_DAYS` ago, with their rows; returns how many."""
    cutoff = (now or timezone.now()) - timedelta(days=KEEP_DAYS)
    old = list(ResultsJoin.objects.filter(built_at__lt=cutoff).values_list("pk", flat=True)[:100])
    if old:
        ResultsJoin.objects.filter(pk__in=old).delete()
    return len(old)


def page_or_preview(
    project: Project, batch: Batch, *, page: int = 1, failed_only: bool = False, custom_id: str = ""
) -> ResultsPage:
    """The results page, from the kept join when it is ready; a preview (``preparing``) when a large
    finished batch's join is not ready yet. Raises :class:`UpstreamError` when a file can not be read."""
    counts = batch.request_counts
    large = counts is not None and counts.total > INLINE_BUILD_MAX
    if batch.is_terminal and large and ready_join(project, batch) is None:
        ask_for_preparation(project.slug, batch.id)
        return preview(project, batch)
    return results_page(project, batch, page=page, failed_only=failed_only, custom_id=custom_id)


def preview(project: Project, batch: Batch, *, rows: int = PER_PAGE) -> ResultsPage:
    """What can be shown at once: the batch's own request counts and its first ``rows`` results as they
    stand in the output file (then the error file), without their input lines."""
    shown = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if not file_id or len(shown) >= rows:
            continue
        with closing(file_objects(project, file_id)) as lines:
            for line in lines:
                shown.append(shown_row(line.obj))
                if len(shown) >= rows:
                    break
    counts = batch.request_counts
    total = counts.total if counts else len(shown)
    return ResultsPage(
        rows=tuple(shown), page=1, pages=1, total=total, failed_only=False,
        succeeded=counts.completed if counts else 0, failed=counts.failed if counts else 0, expired=0,
        not_run=max(total - counts.completed - counts.failed, 0) if counts else 0,
        input_available=False, preparing=True,
    )
