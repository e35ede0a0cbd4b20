"""Export of a filtered view: ``/projects/<slug>/batches/export.csv?<filters>`` (or ``.jsonl``) and the
same under ``/search/``. Every page of the view, streamed; a filter with a problem refuses (400) rather
than widen the export to batches the person never picked."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_safe

from ..export import export_response
from ..index import selectors
from ..index.filters import parse_filters
from ..access import project_view, visible_projects
from ..projects import Project
from .find import refuse_filter


def _kind(kind: str) -> str:
    if kind not in ("csv", "jsonl"):
        raise Http404("Export as .csv or .jsonl.")
    return kind


@require_safe
@project_view
def export(request: HttpRequest, project: Project, kind: str) -> HttpResponse:
    kind = _kind(kind)
    filters, problems = parse_filters(request.GET, known_statuses=selectors.unknown_statuses([project.slug]))
    if problems:
        return refuse_filter(request, problems, "An export", "exported", reverse("batches:list", args=[project.slug]))
    return export_response(selectors.export_records([project.slug], filters), kind, f"batches-{project.slug}")


@require_safe
def search_export(request: HttpRequest, kind: str) -> HttpResponse:
    kind = _kind(kind)
    slugs = [p.slug for p in visible_projects(request)]
    filters, problems = parse_filters(request.GET, cross_project=True, known_statuses=selectors.unknown_statuses(slugs))
    if problems:
        return refuse_filter(request, problems, "An export", "exported", reverse("search"))
    return export_response(selectors.export_records(slugs, filters), kind, "batches-search")
