"""Filters and tags for rendering upstream values: unix times, status badges, progress widths, raw JSON.

Filters return plain strings or values, which templates autoescape. The tags that return markup (the
status badge, the progress bar, the cancel form) are the list rows' own functions in batches/rows.py,
which escape every value before marking anything safe: every value comes from the upstream.
"""

from __future__ import annotations

import datetime as dt
import json

from django import template

from .. import rows
from ..rows import RowContext, pct_class, render_row, render_rows, status_class, status_label

register = template.Library()
register.filter("status_class", status_class)
register.filter("status_label", status_label)
register.filter("pct_class", pct_class)
register.filter("batch_hint", rows.batch_hint)
register.filter("pending_label", rows.pending_label)
register.filter("finished_at", rows.finished_at)
register.filter("results_deleted_at", rows.results_deleted_at)


@register.simple_tag(takes_context=True)
def batch_rows(context, batches):
    """All rows of the list table, rendered in Python (see batches/rows.py for why)."""
    return render_rows(batches, _row_context(context))


@register.simple_tag(takes_context=True)
def batch_row(context, batch, notice=None):
    return render_row(batch, _row_context(context), notice)


# The batch page uses the very functions that render the list's rows: one definition of each piece.
@register.simple_tag
def status_badge(batch, large=False, element_id=""):
    return rows.status_badge(batch, large=large, element_id=element_id)


@register.simple_tag
def batch_progress(batch, large=False):
    return rows.progress(batch, large=large)


@register.simple_tag(takes_context=True)
def cancel_form(context, batch):
    return rows.cancel_form(batch, _row_context(context), in_row=False)


def _row_context(context) -> RowContext:
    project = context["project"]
    return RowContext.build(
        project=project.slug, can_operate=bool(context.get("can_operate")), csrf_token=context.get("csrf_token") or ""
    )


@register.filter
def unixtime(value):
    """A unix timestamp (seconds) as an aware datetime, or None."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return dt.datetime.fromtimestamp(int(value), tz=dt.UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


@register.filter
def pretty_json(value) -> str:
    """The upstream's object as indented JSON text. The template escapes it like any other string."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


@register.filter
def timeline_steps(batch) -> list[dict]:
    """The batch's status timestamps, oldest first, each with the time since the step before it."""
    steps = []
    previous = None
    for label, ts in batch.timeline:
        steps.append({"label": label, "at": unixtime(ts), "since_previous": None if previous is None else ts - previous})
        previous = ts
    return steps


@register.filter
def duration(seconds) -> str:
    """A short human duration: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    try:
        total = int(seconds)
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template, or None."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
