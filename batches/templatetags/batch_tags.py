"""Filters and tags for rendering upstream values: unix times, status badges, progress widths, raw JSON.

Filters return plain strings or values, which templates autoescape. The tags that show a badge, a
flag, a progress bar or the cancel form render the macros of ``templates/jinja2/batches/rows.jinja``,
the same ones the list's rows use: one definition of each piece.
"""

from __future__ import annotations

import datetime as dt
import json

from django import template

from .. import describe, rows
from ..index.records import finished_at
from ..projects import get_project

register = template.Library()
register.filter("status_class", describe.status_class)
register.filter("status_label", describe.status_label)
register.filter("pct_class", describe.pct_class)
register.filter("batch_hint", describe.batch_hint)
register.filter("pending_label", describe.pending_label)
register.filter("finished_at", finished_at)
register.filter("results_deleted_at", describe.results_deleted_at)
register.filter("duration", describe.duration)


@register.simple_tag(takes_context=True)
def batch_rows(context, batches):
    """All rows of the list table (batches/rows.py keeps each rendered row per content)."""
    return rows.render_rows(batches, _row_context(context))


@register.simple_tag(takes_context=True)
def batch_row(context, batch, notice=None):
    return rows.render_row(batch, _row_context(context), notice)


@register.simple_tag
def status_badge(batch, large=False, element_id=""):
    return rows.piece("status_badge", rows.badge_of(batch, large=large, element_id=element_id))


@register.simple_tag
def batch_progress(batch, large=False):
    return rows.piece("progress", rows.progress_of(batch, large=large))


@register.simple_tag(takes_context=True)
def cancel_form(context, batch):
    return rows.piece("cancel_form", rows.cancel_of(batch, _row_context(context), in_row=False), context.get("csrf_token"))


@register.simple_tag
def flag_badge(flag):
    return rows.piece("flag_badge", flag)


@register.simple_tag
def batch_cost(price):
    return rows.piece("cost", price)


def _row_context(context) -> rows.RowContext:
    project = context["project"]
    return rows.RowContext.build(
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
def project_name(slug: str) -> str:
    """The name of the project ``slug`` in the projects file; the slug itself when it is not there."""
    project = get_project(slug)
    return project.name if project is not None else slug
