"""Cost, ETA and trouble flags in templates. Each tag renders a small partial of
``batches/_oversight.html``; the pages include them with one line (see docs/oversight.md):

* batch page: ``{% batch_oversight batch %}`` (cost with its reason or rates, ETA, flags explained);
* list row cell: ``{% batch_cost_cell batch %}`` and ``{% batch_flag_badges batch %}``;
* a total over a queryset of ``BatchRecord``: ``{% cost_total records %}``;
* create page: ``{% cost_estimate estimate %}`` for :func:`batches.oversight.pricing.estimate_jsonl`.
"""

from __future__ import annotations

from django import template

from ..oversight import eta, pricing
from ..oversight.charts import legend

register = template.Library()

PARTIALS = "batches/_oversight.html"


@register.filter
def percent(value) -> str:
    """0.1534 → "15.3 %"."""
    try:
        return f"{float(value) * 100:.1f} %"
    except (TypeError, ValueError):
        return ""


@register.filter
def money(value) -> str:
    return pricing.money(value)


@register.simple_tag
def chart_legend(chart):
    return legend(chart)


def _project_slug(context, batch) -> str:
    project = context.get("project")
    slug = getattr(project, "slug", None) or getattr(batch, "project", None)
    return slug or ""


@register.inclusion_tag(f"{PARTIALS}#oversight-batch", takes_context=True)
def batch_oversight(context, batch):
    """The batch page's panel: price (or why none), ETA and flags with their sentences."""
    return {
        "batch": batch,
        "price": pricing.batch_price(batch),
        "price_source": pricing.price_data_label(),
        "oversight": eta.batch_oversight(_project_slug(context, batch), batch),
    }


@register.inclusion_tag(f"{PARTIALS}#oversight-cost-cell")
def batch_cost_cell(batch):
    return {"price": pricing.batch_price(batch)}


@register.inclusion_tag(f"{PARTIALS}#oversight-flag-badges", takes_context=True)
def batch_flag_badges(context, batch):
    """Flag badges for a list row. A finished batch costs no query (only "failing" can apply)."""
    return {"oversight": eta.batch_oversight(_project_slug(context, batch), batch)}


@register.inclusion_tag(f"{PARTIALS}#oversight-total")
def cost_total(records):
    return {"total": pricing.price_total(records), "price_source": pricing.price_data_label()}


@register.inclusion_tag(f"{PARTIALS}#oversight-estimate")
def cost_estimate(estimate):
    return {"estimate": estimate, "price_source": pricing.price_data_label()}
