"""Cost, ETA and trouble flags in templates. Each tag renders a small partial of
``batches/_oversight.html``; the pages include them with one line (see docs/oversight.md):

* batch page: ``{% batch_oversight batch %}`` (cost with its reason or rates, ETA, flags explained);
* a total over a queryset of ``BatchRecord``: ``{% cost_total records %}``;
* create page: ``{% cost_estimate estimate %}`` for :func:`batches.oversight.estimate.estimate_jsonl`;
* list pages: ``{% index_progress %}``, how far the index's backfill has come ("12,400 batches indexed
  back to 2 March; backfill running"), from the counts the page already has.
"""

from __future__ import annotations

import datetime as dt

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format

from ..index import flags, selectors
from ..oversight import pricing
from ..oversight.estimate import BYTES_PER_TOKEN, ESTIMATE_METHOD, TOKENS_PER_MESSAGE

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


@register.inclusion_tag(f"{PARTIALS}#oversight-batch", takes_context=True)
def batch_oversight(context, batch):
    """The batch page's panel: price (or why none), ETA and flags with their sentences."""
    return {
        "batch": batch,
        "price": pricing.batch_price(pricing.with_kept_usage(context["project"].slug, batch)),
        "price_source": pricing.price_data_label(),
        "oversight": flags.batch_oversight(context["project"].slug, batch),
    }


@register.inclusion_tag(f"{PARTIALS}#oversight-total")
def cost_total(records):
    return {"total": pricing.price_total(records), "price_source": pricing.price_data_label()}


@register.inclusion_tag(f"{PARTIALS}#oversight-estimate")
def cost_estimate(estimate):
    return {"estimate": estimate, "price_source": pricing.price_data_label()}


@register.inclusion_tag(f"{PARTIALS}#estimate-panel", takes_context=True)
def estimate_panel(context):
    """The create page's estimate before upload: ``static/batches/create.js`` counts the chosen file in
    the browser by this rule and asks ``batches:price`` for the model's rates."""
    project = context["project"]
    return {
        "price_url": reverse("batches:price", args=[project.slug]),
        "bytes_per_token": BYTES_PER_TOKEN,
        "tokens_per_message": TOKENS_PER_MESSAGE,
        "method": ESTIMATE_METHOD,
    }


# -- index backfill progress ---------------------------------------------------------------------


def backfill_sentence(state, indexed: int, now: dt.datetime | None = None) -> str:
    """How far the index reaches back: "12,400 batches indexed back to 2 March; backfill running",
    "… back to the first batch; backfill done". ``state`` is the project's ``SyncState`` (or None)."""
    noun = "batch" if indexed == 1 else "batches"
    count = f"{number_format(indexed, force_grouping=True)} {noun} indexed"
    if state is None or (state.last_pass_started is None and state.last_success is None and not state.backfill_done):
        return f"{count}; the sync has not run yet"
    if state.backfill_done:
        return f"{count} back to the first batch; backfill done"
    oldest = state.backfill_oldest_created_at
    if oldest is None:
        return f"{count}; backfill starting"
    try:
        when = timezone.localtime(dt.datetime.fromtimestamp(int(oldest), tz=dt.UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return f"{count}; backfill running"
    today = timezone.localtime(now) if now is not None else timezone.localtime()
    day = f"{when.day} {when.strftime('%B')}" + (f" {when.year}" if when.year != today.year else "")
    return f"{count} back to {day}; backfill running"


def _sum(counts) -> int:
    return sum(counts.values()) if counts else 0


def _progress_lines(context) -> list[str]:
    """A filtered view has what the line needs already (``freshness``: each project's ``SyncState``;
    ``found.project_counts``: its per-status counts), so the line costs no query; the live list sums
    its status chips and reads the project's ``SyncState`` (one query)."""
    lines = []
    found = context.get("found")
    freshness = context.get("freshness")
    if found is not None and freshness is not None:
        many = len(freshness) > 1
        for fresh in freshness:
            sentence = backfill_sentence(fresh.state, _sum(found.project_counts.get(fresh.project.slug)))
            lines.append(f"{fresh.project.name}: {sentence}" if many else sentence)
    else:
        project = context.get("project")
        if project is not None:
            chips = context.get("index_chips") or ()
            state = selectors.sync_state_of(project.slug)
            lines.append(backfill_sentence(state, sum(chip["count"] for chip in chips)))
    return lines


@register.inclusion_tag(f"{PARTIALS}#index-progress", takes_context=True)
def index_progress(context):
    """The backfill line of the live list page."""
    return {"lines": _progress_lines(context)}


@register.inclusion_tag(f"{PARTIALS}#find-summary", takes_context=True)
def find_summary(context):
    """Above a filtered view's table (project list and ``/search/``): the estimated cost of everything
    the filter matches, which the page loads once shown (``views/find.py:cost_total``), and the
    backfill line."""
    return {
        "cost_total_url": context.get("cost_total_url"),
        "matching": context.get("matching"),
        "lines": _progress_lines(context),
    }
