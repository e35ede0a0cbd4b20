"""Finding batches: filtered views of the index (``/projects/<slug>/batches/?status=…``) and
``/search/`` across projects, with the estimated cost of everything a filter matches.

These views read the dashboard's own index through ``index/selectors.py`` (never the upstream: a filter,
a count or an export costs no API call) and parse the query string with ``index/filters.FilterForm``. A
bad filter value becomes a sentence on the page and is ignored (400 when opened cold, 200 for htmx,
which swaps only 2xx), never a 500. Export and bulk cancel are ``find_export.py`` and ``bulk_cancel.py``.

What a person sees is bounded by ``visible_projects(request)``: a project they may not see is never
read, so it appears in no row, count or export.
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers

from ..conf import conf
from ..describe import status_class, status_label
from ..find_rows import render_find_rows
from ..index import selectors
from ..index.filters import Filters, parse_filters
from ..oversight import pricing
from ..access import may_operate, project_view, visible_projects
from ..projects import Project
from ..upstream import PROVIDERS
from ..vocabulary import DEFAULT_LIMIT, DEFAULT_SORT, FLAG_LABELS, PAGE_SIZES, SORT_LABELS, STATUS_ORDER, TERMINAL_STATUSES

FORM_ID = "bulk-cancel-form"
#: The total is keyed by the index's generation, so it may live longer than the read cache.
COST_TOTAL_SECONDS = 300


def refuse_filter(request: HttpRequest, problems: list[str], what: str, verb: str, back_url: str) -> HttpResponse:
    """An export, total or action whose filter has a problem does nothing (400): ignoring the bad value,
    as a page does, would widen it to batches the person never picked."""
    context = {"problems": problems, "what": what, "verb": verb, "back_url": back_url}
    template = "batches/filter_refused.html" + ("#refusal" if request.htmx else "")
    return render(request, template, context, status=400)


def _query(params: list[tuple[str, str]]) -> str:
    return "?" + urlencode(params, safe=",:/") if params else ""


def compact_redirect(request: HttpRequest) -> HttpResponse | None:
    """A filter form submitted without JavaScript sends every field, empty ones included
    (``?status=failed&q=&endpoint=…&sort=-created&limit=20``). Opened cold, such an address is
    redirected to the same view with only what is set, so the URL an operator pastes is short; the
    values kept are untouched (a bad one still gets its sentence there). htmx requests never carry
    empty fields (dashboard.js leaves them out) and are not redirected."""
    if request.htmx:
        return None
    pairs = [(name, value) for name, values in request.GET.lists() for value in values]
    kept = [
        (name, value) for name, value in pairs
        if value.strip() and not (name == "sort" and value == DEFAULT_SORT)
        and not (name == "limit" and value == str(DEFAULT_LIMIT))
    ]
    return None if kept == pairs else redirect(request.path + _query(kept))


def _chips(filters: Filters, found: selectors.Found, base_url: str) -> list[dict]:
    """One chip per status with batches: its count under the current filter (and of everything), and a
    link that picks that status keeping every other filter."""
    filter_totals = found.totals(found.filter_counts)
    project_totals = found.totals(found.project_counts)
    chips = [{
        "label": "all", "status": "", "count": sum(filter_totals.values()), "of": sum(project_totals.values()),
        "url": base_url + filters.query(statuses=()), "active": not filters.statuses,
    }]
    for status, total in selectors.ordered_counts(project_totals):
        chips.append({
            "label": status_label(status), "status": status, "count": filter_totals.get(status, 0), "of": total,
            "url": base_url + filters.query(statuses=(status,)), "active": status in filters.statuses,
            "class": status_class(status),
        })
    return chips


def _active_filters(filters: Filters, base_url: str) -> list[dict]:
    """Each set filter as a chip whose link removes just that one (the phone layout shows these while
    the form is folded away)."""
    out = []

    def chip(label: str, **without) -> None:
        out.append({"label": label, "url": base_url + filters.query(**without)})

    for status in filters.statuses:
        chip(f"status: {status_label(status)}", statuses=tuple(s for s in filters.statuses if s != status))
    for provider in filters.providers:
        chip(f"provider: {provider}", providers=tuple(p for p in filters.providers if p != provider))
    for name in ("q", "endpoint", "model", "flag"):
        if getattr(filters, name):
            chip(f"{'search' if name == 'q' else name}: {getattr(filters, name)}", **{name: ""})
    if filters.created_after:
        chip(f"from {filters.created_after.isoformat()}", created_after=None)
    if filters.created_before:
        chip(f"to {filters.created_before.isoformat()}", created_before=None)
    for pair in filters.meta:
        chip(f"{pair[0]}: {pair[1]}", meta=tuple(p for p in filters.meta if p != pair))
    if filters.sort != DEFAULT_SORT:
        chip(SORT_LABELS[filters.sort].lower(), sort=DEFAULT_SORT)
    return out


def _parse(request: HttpRequest, projects: list[Project], *, cross_project: bool):
    """The filters, the problems, and the projects' per-status counts (read first: a status the
    upstream added lately is filterable as soon as the index holds it)."""
    slugs = [p.slug for p in projects]
    counts = selectors.counts_by_project(slugs) if slugs else {}
    known = {status for per in counts.values() for status in per}
    filters, problems = parse_filters(request.GET, cross_project=cross_project, known_statuses=known)
    return filters, problems, counts


def form_choices(filters: Filters, statuses: list[str]) -> dict:
    """What the filter form offers (the live list shows it too, empty)."""
    return {
        "filters": filters,
        "status_choices": statuses,
        "sorts": list(SORT_LABELS.items()),
        "flag_choices": list(FLAG_LABELS.items()),
        "page_sizes": sorted({*PAGE_SIZES, filters.limit}),
        "meta_values": [f"{k}:{v}" for k, v in filters.meta] + [""],
        "default_sort": DEFAULT_SORT,
        "default_limit": DEFAULT_LIMIT,
    }


def _find_context(request: HttpRequest, projects: list[Project], filters: Filters, problems: list[str],
                  base_url: str, *, show_project: bool, export_url: str, cancel_url: str, cost_url: str,
                  counts=None) -> dict:
    found = selectors.find([p.slug for p in projects], filters, counts)
    freshness = selectors.freshness_of(projects)
    operators = {p.slug: may_operate(request, p) for p in projects}
    filter_params = filters.params(with_cursor=False, with_limit=False)
    export_query = _query(filter_params)
    seen = set(found.totals(found.project_counts))
    context = form_choices(filters, [*STATUS_ORDER, *sorted(seen - set(STATUS_ORDER))])
    context.update({
        "problems": problems,
        "found": found,
        "rows_html": render_find_rows(
            found.rows, csrf_token=get_token(request), operators=operators, names={p.slug: p.name for p in projects},
            show_project=show_project, form_id=FORM_ID,
        ),
        "row_count": len(found.rows),
        "matching": found.matching(filters),
        "chips": _chips(filters, found, base_url),
        "active_filters": _active_filters(filters, base_url),
        "next_url": base_url + _query(replace(filters, after=found.next_cursor).params()) if found.next_cursor else None,
        "first_url": base_url + filters.query() if filters.after else None,
        "self_url": base_url + _query(filters.params()),
        "clear_url": base_url,
        "freshness": freshness,
        "never_synced": [f for f in freshness if f.never_synced],
        "show_project": show_project,
        "provider_choices": [(info.name, info.label) for info in PROVIDERS.values()],
        "can_operate_any": any(operators.values()),
        "form_id": FORM_ID,
        "cancel_url": cancel_url,
        "hidden_filters": filter_params,
        "export_csv": export_url.replace("KIND", "csv") + export_query,
        "export_jsonl": export_url.replace("KIND", "jsonl") + export_query,
        # A poll (the table's own hx-trigger) must not swap the filter form under someone typing in it.
        "oob_form": bool(request.htmx) and request.htmx.trigger != "batch-table",
        "filtered": True,
        # While the page shows unfinished rows it polls itself, one request per tick, as the live list
        # does: the index learns of changes from the sync and the webhooks, and the rows follow.
        "live": any(record.status not in TERMINAL_STATUSES for record in found.rows),
        "poll_seconds": conf().poll_seconds_text,
        # "$412.18 for 1,240 batches; 14 without a known price" for everything the filter matches is
        # one grouped query over all of it (hundreds of ms over 200,000 rows), so the page asks for it
        # after it has shown (cost_total below) instead of waiting for it.
        "cost_total_url": cost_url + export_query,
    })
    return context


def project_chips(project: Project) -> list[dict]:
    """The project's per-status counts from the index, as chips for the live page."""
    counts = selectors.counts_by_project([project.slug]).get(project.slug, {})
    base = reverse("batches:list", args=[project.slug])
    filters = Filters()
    return [
        {"label": status_label(status), "status": status, "count": n, "url": base + filters.query(statuses=(status,)),
         "class": status_class(status), "active": False}
        for status, n in selectors.ordered_counts(counts)
    ]


def project_find(request: HttpRequest, project: Project) -> HttpResponse:
    """``/projects/<slug>/batches/?status=…``: the list page served from the index (called by
    ``browse.batch_list`` when any filter parameter is present)."""
    filters, problems, counts = _parse(request, [project], cross_project=False)
    context = _find_context(
        request, [project], filters, problems, reverse("batches:list", args=[project.slug]), show_project=False,
        export_url=reverse("batches:export", args=[project.slug, "KIND"]),
        cost_url=reverse("batches:cost_total", args=[project.slug]),
        cancel_url=reverse("batches:bulk_cancel", args=[project.slug]), counts=counts,
    )
    context["can_operate"] = may_operate(request, project)
    template = "batches/batch_list.html"
    if request.htmx:
        template += "#find-table"
    # A corrected value still shows a page: 200 for htmx (it swaps only 2xx), 400 on a cold open.
    status = 400 if problems and not request.htmx else 200
    return render(request, template, context, status=status)


@require_safe
@vary_on_headers("HX-Request")
def search(request: HttpRequest) -> HttpResponse:
    """``/search/``: the same filters over every project the person may see, with a project column and
    counts per project."""
    if (short := compact_redirect(request)) is not None:
        return short
    projects = visible_projects(request)
    filters, problems, counts = _parse(request, projects, cross_project=True)
    context = _find_context(
        request, projects, filters, problems, reverse("search"), show_project=True,
        export_url=reverse("search_export", args=["KIND"]), cancel_url=reverse("search_bulk_cancel"),
        cost_url=reverse("search_cost_total"), counts=counts,
    )
    context["per_project"] = _per_project(projects, context["found"], filters)
    template = "batches/search.html"
    if request.htmx:
        template += "#search-table"
    status = 400 if problems and not request.htmx else 200
    return render(request, template, context, status=status)


def _per_project(projects: list[Project], found: selectors.Found, filters: Filters) -> list[dict]:
    out = []
    for project in projects:
        counts = found.filter_counts.get(project.slug, {})
        out.append({
            "project": project,
            "matching": sum(n for s, n in counts.items() if not filters.statuses or s in filters.statuses),
            "total": sum(found.project_counts.get(project.slug, {}).values()),
            "counts": selectors.ordered_counts(counts),
            "url": reverse("batches:list", args=[project.slug]) + filters.query(),
        })
    return out


# -- cost of everything a filter matches -------------------------------------------------------------


def _cost_total_response(request: HttpRequest, slugs: list[str], filters: Filters, back_url: str) -> HttpResponse:
    total = selectors.cached_aggregate(
        pricing.usage_by_model(selectors.matching(slugs, filters)), pricing.total_of, at_least=COST_TOTAL_SECONDS
    )
    context = {"total": total, "price_source": pricing.price_data_label(), "back_url": back_url}
    template = "batches/find_cost.html"
    if request.htmx:
        template += "#find-cost"
    return render(request, template, context)


@require_safe
@vary_on_headers("HX-Request")
@project_view
def cost_total(request: HttpRequest, project: Project) -> HttpResponse:
    """The estimated cost of every batch a filtered view matches (the view loads it once shown)."""
    filters, problems = parse_filters(request.GET, known_statuses=selectors.unknown_statuses([project.slug]))
    back = reverse("batches:list", args=[project.slug]) + filters.query()
    if problems:
        return refuse_filter(request, problems, "A cost total", "priced", back)
    return _cost_total_response(request, [project.slug], filters, back)


@require_safe
@vary_on_headers("HX-Request")
def search_cost_total(request: HttpRequest) -> HttpResponse:
    slugs = [p.slug for p in visible_projects(request)]
    filters, problems = parse_filters(request.GET, cross_project=True, known_statuses=selectors.unknown_statuses(slugs))
    back = reverse("search") + filters.query()
    if problems:
        return refuse_filter(request, problems, "A cost total", "priced", back)
    return _cost_total_response(request, slugs, filters, back)
