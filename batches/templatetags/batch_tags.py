"""Filters and tags for rendering upstream values: unix times, status badges, progress widths, raw JSON.

Everything here returns plain strings or values; templates autoescape them. Nothing is marked safe,
because every value comes from the upstream (metadata and error messages are user data).
"""

from __future__ import annotations

import datetime as dt
import json

from django import template
from django.urls import NoReverseMatch, reverse

from ..client import CANCELLABLE_STATUSES, KNOWN_STATUSES, TERMINAL_STATUSES

register = template.Library()


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
def status_class(status: str) -> str:
    """A CSS class for a status badge; unknown statuses get a neutral badge and still render."""
    return f"status-{status}" if status in KNOWN_STATUSES else "status-unknown"


@register.filter
def status_label(status: str) -> str:
    return (status or "unknown").replace("_", " ")


@register.filter
def status_hint(status: str) -> str:
    """One sentence for the badge's title: what the status means for the operator."""
    return STATUS_HINTS.get(status, "A status this dashboard does not know yet; shown as the API sent it.")


# Wording follows the Batch guide's status table (shared/openai-spec/NOTES.md §4).
STATUS_HINTS = {
    "validating": "The input file is being validated before the batch can begin.",
    "failed": "The input file failed validation, or the batch could not run.",
    "in_progress": "The input file was validated and the batch is running.",
    "finalizing": "The batch has run; its results are being prepared.",
    "completed": "The batch has finished. Check the request counts: some requests may have failed.",
    "expired": "The batch was not finished within its completion window.",
    "cancelling": "Cancel requested; in-flight requests are finishing (up to 10 minutes).",
    "cancelled": "The batch was cancelled.",
}


@register.filter
def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


@register.filter
def is_cancellable(status: str) -> bool:
    return status in CANCELLABLE_STATUSES


@register.filter
def pct_class(value) -> str:
    """A width class (w-0 … w-100, in steps of 1) for progress bars: CSP forbids style attributes."""
    try:
        pct = int(round(float(value)))
    except (TypeError, ValueError):
        pct = 0
    return f"w-{min(max(pct, 0), 100)}"


@register.filter
def pretty_json(value) -> str:
    """The upstream's object as indented JSON text. The template escapes it like any other string."""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return repr(value)


@register.simple_tag
def file_url(batch_id: str, kind: str, file_id: str | None) -> str:
    """The dashboard's download URL for a batch's input, output or error file, or "" when there is no
    such file or no download view is installed (the template then shows the id as plain text)."""
    if not file_id:
        return ""
    return optional_url("batches:file_download", batch_id, kind)


@register.simple_tag
def optional_url(name: str, *args) -> str:
    """``{% url %}`` that yields "" instead of failing when the view does not exist."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


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
