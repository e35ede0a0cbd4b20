"""The rows of a filtered view (a project's index, or ``/search/``): the live list's row partial with
a selection box, a project column and a stale-index note, and the page's ETA and flags read per
project (never per row)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from . import rows
from .describe import duration
from .index.flags import oversight_for
from .index.records import batches_from_records
from .index.selectors import stale_before
from .models import BatchRecord
from .oversight import eta
from .vocabulary import TERMINAL_STATUSES


def records_oversight(records: list[BatchRecord]) -> dict[tuple[str, str], eta.Oversight]:
    """ETA and flags of index rows: one sample query per project among them (a project's page is one
    query; ``/search/`` one per project it shows), never one per row."""
    by_project: dict[str, list[BatchRecord]] = {}
    out = {}
    for record in records:
        if record.status in TERMINAL_STATUSES:  # only "failing" can apply: no history needed
            out[record.project, record.batch_id] = rows.finished_oversight(
                record.completed_requests or 0, record.failed_requests or 0
            )
        else:
            by_project.setdefault(record.project, []).append(record)
    for slug, group in by_project.items():
        for batch_id, info in oversight_for(slug, group).items():
            out[slug, batch_id] = info
    return out


def render_find_rows(records: list[BatchRecord], *, csrf_token: str, operators: dict[str, bool],
                     names: dict[str, str], show_project: bool, form_id: str) -> SafeString:
    """The table rows: a selection checkbox (operators of the row's project, cancellable rows), the
    project (``/search/``) and a note on rows whose indexed state is older than two sync intervals
    (unfinished rows only: a finished batch does not change). ``operators`` and ``names`` are keyed
    by project slug."""
    threshold = stale_before()
    now = timezone.now()
    oversight = records_oversight(records)
    price = rows.PagePricer()
    by_project: dict[str, list[BatchRecord]] = {}
    for record in records:
        by_project.setdefault(record.project, []).append(record)
    rendered: dict[tuple[str, str], str] = {}
    made = batches_from_records(records)
    for slug, group in by_project.items():
        operate = operators.get(slug, False)
        ctx = rows.RowContext.build(project=slug, can_operate=operate, csrf_token=csrf_token)
        batches, extras = [], {}
        for record in group:
            batch = made[record.pk]
            batches.append(batch)
            stale = ""
            if not batch.is_terminal and record.last_synced and record.last_synced < threshold:
                stale = duration(max(int((now - record.last_synced).total_seconds()), 0)) or "0 s"
            extras[batch.id] = rows.FindExtras(
                pick=f"{slug}/{batch.id}" if operate and batch.can_cancel and batch.is_linkable else "",
                form_id=form_id,
                project_name=names.get(slug, slug) if show_project else "",
                project_url=reverse("batches:list", args=[slug]) if show_project else "",
                provider_label=batch.provider_info.label if show_project else "",
                stale_ago=stale,
            )
        page = {batch.id: oversight[slug, batch.id] for batch in batches}
        for batch, row in zip(batches, rows.rendered_rows(batches, ctx, oversight=page, extras=extras, price=price)):
            rendered[slug, batch.id] = row
    return rows.with_token("".join(rendered[record.project, record.batch_id] for record in records), csrf_token)
