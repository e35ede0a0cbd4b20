"""What the views share: rendering a page (or for an htmx request only the part of it that the request
swaps), and the two views of a page about one project or about all of them."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers

from ..access import project_view, visible_projects
from ..projects import Project


def render_page(request: HttpRequest, template: str, partial: str, context: dict, *, status: int = 200) -> HttpResponse:
    """``template`` as a whole page; for an htmx request only its partial ``partial`` (what it swaps)."""
    if request.htmx:
        template = f"{template}#{partial}"
    return render(request, template, context, status=status)


ScopedPage = Callable[[HttpRequest, list[Project], str, Project | None], HttpResponse]


def scoped_views(page: ScopedPage, url_name: str) -> tuple[Callable, Callable]:
    """The two views of a page about one project (``batches:<url_name>``) or about every project the
    person may see (``<url_name>``): GET only, varied on htmx. Each calls ``page(request, projects,
    its own url, the project or None)``."""

    @require_safe
    @vary_on_headers("HX-Request")
    @project_view
    def one_project(request: HttpRequest, project: Project) -> HttpResponse:
        return page(request, [project], reverse(f"batches:{url_name}", args=[project.slug]), project)

    @require_safe
    @vary_on_headers("HX-Request")
    def every_project(request: HttpRequest) -> HttpResponse:
        return page(request, visible_projects(request), reverse(url_name), None)

    return one_project, every_project
