"""Insights: day-by-day charts of one project (``/projects/<slug>/insights/``) or of every project the
person may see (``/insights/``), for the ``from``/``to`` dates in the query string.

Everything is read from the index; the page makes no upstream call. ``?format=csv&chart=<slug>``
downloads one chart's numbers. htmx swaps only the charts when the range form is submitted, and pushes
the URL, which renders the full page when opened cold.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from ..oversight import insights, pricing
from ..projects import Project
from .pages import render_page, scoped_views


def _insights(request: HttpRequest, projects: list[Project], url: str, project: Project | None) -> HttpResponse:
    rng = insights.parse_range(request.GET)
    if request.GET.get("format") == "csv":
        return _csv(request, projects, rng, project)
    data = insights.build([p.slug for p in projects], rng)
    query = urlencode(rng.query())
    context = {
        "insights": data,
        "range": rng,
        "url": url,
        "page_name": "Insights",
        "body_id": "insights-body",
        "query": query,
        "scope_projects": projects,
        "price_source": pricing.price_data_label(),
    }
    return render_page(request, "batches/insights.html", context["body_id"], context)


def _csv(request: HttpRequest, projects: list[Project], rng: insights.DateRange, project: Project | None) -> HttpResponse:
    chart_slug = request.GET.get("chart", "")
    if chart_slug not in insights.CHARTS:
        return HttpResponse(
            f"Unknown chart; choose one of {', '.join(insights.CHARTS)}.\n", status=400, content_type="text/plain; charset=utf-8"
        )
    chart = insights.build([p.slug for p in projects], rng).charts[chart_slug]
    scope = project.slug if project else "all-projects"
    response = HttpResponse(chart.csv(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="insights-{scope}-{chart_slug}-{rng.start.isoformat()}-{rng.end.isoformat()}.csv"'
    )
    return response


project_insights, all_insights = scoped_views(_insights, "insights")
