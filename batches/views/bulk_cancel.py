"""Bulk cancel from a filtered view: ``POST …/bulk-cancel/`` with picks (``pick=<slug>/<id>``) or
``all=1`` plus the view's filters → a confirmation page; with ``confirm=1`` → each cancel, with its
outcome per batch (batches/bulk_cancel.py). Operators only, each cancel audited."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from ..bulk_cancel import BULK_CANCEL_CAP, cancel_one, parse_picks, resolve, tally
from ..index import selectors
from ..index.filters import parse_filters
from ..access import project_view, visible_projects
from ..projects import Project
from .find import refuse_filter


def _bulk_cancel(request: HttpRequest, projects: list[Project], scope_url: str, back_url: str) -> HttpResponse:
    allowed = {p.slug: p for p in projects}
    truncated = False
    back_url = back_url if back_url.startswith("/") and not back_url.startswith("//") else scope_url
    if request.POST.get("all") == "1":
        slugs = list(allowed)
        filters, problems = parse_filters(request.POST, cross_project=True, known_statuses=selectors.unknown_statuses(slugs))
        if problems:
            return refuse_filter(request, problems, "Cancelling all matching", "cancelled", back_url)
        ids = selectors.newest_matching_ids(slugs, filters, BULK_CANCEL_CAP + 1)
        values = [f"{slug}/{batch_id}" for slug, batch_id in ids]
    else:
        values = request.POST.getlist("pick")
    picks = parse_picks(values, allowed)
    if len(picks) > BULK_CANCEL_CAP:
        picks, truncated = picks[:BULK_CANCEL_CAP], True
    resolve(request, picks)
    context = {
        "picks": picks, "truncated": truncated, "cap": BULK_CANCEL_CAP, "scope_url": scope_url,
        "back_url": back_url, "done": False,
    }
    if request.POST.get("confirm") == "1":
        for pick in picks:
            cancel_one(request, pick)
        context["done"] = True
        context["outcomes"] = tally(p.outcome for p in picks)
    else:
        context["cancellable"] = sum(1 for p in picks if p.cancellable)
    return render(request, "batches/_find_bulk_cancel.html", context)


@require_POST
@project_view
def bulk_cancel(request: HttpRequest, project: Project) -> HttpResponse:
    return _bulk_cancel(
        request, [project], reverse("batches:bulk_cancel", args=[project.slug]),
        request.POST.get("back", "") or reverse("batches:list", args=[project.slug]),
    )


@require_POST
def search_bulk_cancel(request: HttpRequest) -> HttpResponse:
    return _bulk_cancel(
        request, visible_projects(request), reverse("search_bulk_cancel"), request.POST.get("back", "") or reverse("search")
    )
