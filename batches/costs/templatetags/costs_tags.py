"""``{% budget_bar %}``: the compact budget bar of a project's pages ("$312.00 of $500.00 this month,
forecast $540.00"). ``base.html`` includes ``batches/costs/_budget_bar.html``, which calls it; a page
without a project, or a project without a budget, shows nothing and costs no query.

The spend behind the bar is cached for :data:`BAR_SECONDS` per project (it is a few grouped queries
over the month's batches); the costs page and the budget check always compute it afresh.
"""

from __future__ import annotations

from django import template
from django.core.cache import cache

from ..budgets import budget_state

register = template.Library()

BAR_SECONDS = 30


@register.inclusion_tag("batches/costs/_budget_bar.html#bar", takes_context=True)
def budget_bar(context):
    project = context.get("project")
    if project is None or getattr(project, "budget", None) is None:
        return {"state": None}
    key = f"costs:bar:{project.slug}"
    state = cache.get(key)
    if state is None or state.budget != project.budget:
        state = budget_state(project)
        cache.set(key, state, BAR_SECONDS)
    return {"state": state, "project": project}
