"""``{% audit_history batch.id %}``: a batch's history from the audit trail, for any page to include."""

from __future__ import annotations

from django import template

from ..audit import audit_for_batch

register = template.Library()


@register.inclusion_tag("batches/_audit_history.html")
def audit_history(batch_id: str) -> dict:
    return {"batch_id": batch_id, "entries": audit_for_batch(batch_id)}
