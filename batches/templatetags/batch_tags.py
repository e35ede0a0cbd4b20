"""Filters and tags for rendering upstream values: unix times, status badges, progress widths, raw JSON.

Everything here returns plain strings or values; templates autoescape them. Nothing is marked safe,
because every value comes from the upstream (metadata and error messages are user data).
"""

from __future__ import annotations

import datetime as dt
import json

from django import template


from ..upstream import CANCELLABLE_STATUSES, TERMINAL_STATUSES
from ..rows import RowContext, pct_class, render_row, render_rows, status_class, status_hint, status_label

register = template.Library()
register.filter("status_class", status_class)
register.filter("status_label", status_label)
register.filter("status_hint", status_hint)
register.filter("pct_class", pct_class)


@register.simple_tag(takes_context=True)
def batch_rows(context, batches):
    """All rows of the list table, rendered in Python (see batches/rows.py for why)."""
    return render_rows(batches, _row_context(context))


@register.simple_tag(takes_context=True)
def batch_row(context, batch, notice=None):
    return render_row(batch, _row_context(context), notice)


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
def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


@register.filter
def is_cancellable(status: str) -> bool:
    return status in CANCELLABLE_STATUSES


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
