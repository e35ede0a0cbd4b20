"""The audit trail page: every create and cancel attempt, filterable by person, action and batch.

Filters and the page number live in the query string, so a filtered view is a URL you can share; htmx
swaps only the table and pushes that URL.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe
from django.views.decorators.vary import vary_on_headers

from ..access import visible_projects
from ..audit_trail import audit_filters_from_query, audit_page
from ..models import AuditEntry
from .pages import render_page


@require_safe
@vary_on_headers("HX-Request")
def audit_list(request: HttpRequest) -> HttpResponse:
    projects = visible_projects(request)
    visible = [project.slug for project in projects]
    filters = audit_filters_from_query(request.GET, visible)
    page = audit_page(filters, visible, request.GET.get("page"))
    context = {
        "projects": projects,
        "filters": filters,
        "page": page,
        "actions": AuditEntry.Action.choices,
        "filter_query": urlencode(filters.as_query()),
    }
    return render_page(request, "batches/audit_list.html", "audit-table", context)
