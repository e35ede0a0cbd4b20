"""``{% audit_history batch %}``: a batch's history from the audit trail, on the batch page."""

from __future__ import annotations

from django import template

from ..audit_trail import audit_for_batch

register = template.Library()


@register.inclusion_tag("batches/batch_detail.html#audit-history", takes_context=True)
def audit_history(context, batch) -> dict:
    project = context["project"]
    return {"batch": batch, "project": project, "entries": audit_for_batch(project.slug, batch.id)}
