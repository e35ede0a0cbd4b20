"""The "Notify me" state of the batch page's watch button (``templates/batches/_watch.html``), and what a
notification was about, in words (the notification history)."""

from __future__ import annotations

from django import template

from ..notify.tasks import event_label
from ..notify.watching import watch_state as _watch_state

register = template.Library()


@register.simple_tag(takes_context=True)
def watch_state(context):
    """Whether the person watches the page's batch, at which address, and whether it has finished.
    Uses ``project`` and ``batch`` (the batch page) or ``batch_id`` (the watch view's answer)."""
    batch = context.get("batch")
    batch_id = batch.id if batch is not None else context.get("batch_id")
    finished = batch.is_terminal if batch is not None else None
    return _watch_state(context["request"], context["project"].slug, batch_id, finished=finished, error=context.get("watch_error"))


@register.filter
def notification_event(event: str) -> str:
    """What a notification was about, in words (the notification history; each app words its own)."""
    return event_label(event)
