"""The projects a person may see: the overview, the front door, and the old single-project URLs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_safe

from ..access import may_operate, visible_projects
from ..projects import all_projects


@require_safe
def project_overview(request: HttpRequest) -> HttpResponse:
    projects = [{"project": project, "can_operate": may_operate(request, project)} for project in visible_projects(request)]
    return render(request, "batches/project_overview.html", {"projects": projects})


@require_safe
def root(request: HttpRequest) -> HttpResponse:
    """The first project the person may see; the overview says so when there is none."""
    projects = visible_projects(request)
    if not projects:
        return render(request, "batches/project_overview.html", {"projects": []}, status=403)
    return HttpResponseRedirect(reverse("batches:list", args=[projects[0].slug]))


def legacy_redirect(request: HttpRequest, rest: str = "") -> HttpResponse:
    """``/batches/…`` from before projects: the same page of the default project, query string kept,
    so links already pasted in chats still open (302: a later default project may differ)."""
    default = all_projects()[0]
    url = f"{reverse('batches:list', args=[default.slug])}{rest}"
    query = request.META.get("QUERY_STRING", "")
    if query:
        url += "?" + query
    return HttpResponseRedirect(url)
