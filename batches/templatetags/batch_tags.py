"""Filters for rendering upstream values: unix times, status badges, progress widths."""

from __future__ import annotations

import datetime as dt

from django import template

from ..client import KNOWN_STATUSES

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
def pct_class(value) -> str:
    """A width class (w-0 … w-100, in steps of 1) for progress bars: CSP forbids style attributes."""
    try:
        pct = int(round(float(value)))
    except (TypeError, ValueError):
        pct = 0
    return f"w-{min(max(pct, 0), 100)}"
