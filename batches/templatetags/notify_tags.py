"""The "Notify me" state of the batch page's watch button (``templates/batches/_watch.html``), and what a
notification was about, in words (the notification history)."""

from __future__ import annotations

from django import template

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


#: Events that are not a batch status (a status reads as itself: "completed", "expired", ...).
EVENT_WORDS = {
    "failure_rate": "failure rate over the rule's limit",
    "at_risk": "at risk of expiring unfinished",
    "job_finished": "job finished",
    "job_held": "job held by the queue",
}


@register.filter
def notification_event(event: str) -> str:
    """A notification's event in words: ``budget:2026-12:80`` is "80 % of the budget reached
    (2026-12)", ``drift:2026-12-06`` "billed costs drift from the estimates (2026-12-06)" (the keys
    batches/costs/models.CostAlert.event makes)."""
    kind, _, rest = event.partition(":")
    if kind == "budget" and rest:
        period, _, level = rest.partition(":")
        return f"{level} % of the budget reached ({period})" if level else f"budget reached ({period})"
    if kind == "drift" and rest:
        return f"billed costs drift from the estimates ({rest})"
    return EVENT_WORDS.get(event, event.replace("_", " "))
