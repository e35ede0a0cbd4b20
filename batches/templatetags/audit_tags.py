"""``{% audit_history batch.id %}``: a batch's history from the audit trail, for any page to include."""

from __future__ import annotations

from django import template

from ..audit import audit_for_batch

register = template.Library()


@register.inclusion_tag("batches/_audit_history.html", takes_context=True)
def audit_history(context, batch_id: str) -> dict:
    project = context["project"]
    return {"batch_id": batch_id, "project": project, "entries": audit_for_batch(project.slug, batch_id)}
