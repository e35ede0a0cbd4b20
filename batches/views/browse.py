"""List, detail and cancel: the pages operators live in."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from .. import services
from ..auth import actor_name, user_can_operate
from ..client import InvalidId, UpstreamConflict, UpstreamError, UpstreamNotFound, validate_id
from .common import upstream_error_response

DEFAULT_LIMIT = 20


def _parse_list_params(request: HttpRequest) -> tuple[str | None, int, list[str]]:
    problems = []
    after = request.GET.get("after") or None
    if after is not None:
        try:
            validate_id(after)
        except InvalidId:
            problems.append("The “after” cursor is not a valid batch id; showing the first page instead.")
            after = None
    raw_limit = request.GET.get("limit", "")
    limit = DEFAULT_LIMIT
    if raw_limit:
        try:
            limit = int(raw_limit)
        except ValueError:
            problems.append(f"Page size must be a whole number from 1 to 100; showing {DEFAULT_LIMIT}.")
        else:
            if not 1 <= limit <= 100:
                problems.append(f"Page size must be from 1 to 100; showing {DEFAULT_LIMIT}.")
                limit = DEFAULT_LIMIT
    return after, limit, problems


@require_safe
@vary_on_headers("HX-Request")
def batch_list(request: HttpRequest) -> HttpResponse:
    after, limit, problems = _parse_list_params(request)
    try:
        page = services.batch_list(after=after, limit=limit)
    except UpstreamError as err:
        return upstream_error_response(request, err, title="Could not load batches")
    context = {
        "page": page,
        "after": after,
        "limit": limit,
        "problems": problems,
        "can_operate": user_can_operate(request),
    }
    template = "batches/batch_list.html"
    if request.htmx:
        template += "#batch-table"
    return render(request, template, context, status=400 if problems and not request.htmx else 200)


@require_safe
@vary_on_headers("HX-Request")
def batch_detail(request: HttpRequest, batch_id: str) -> HttpResponse:
    try:
        batch = services.batch_retrieve(batch_id)
    except UpstreamNotFound as err:
        raise Http404(str(err)) from err
    except UpstreamError as err:
        return upstream_error_response(request, err, title="Could not load this batch")
    context = {"batch": batch, "can_operate": user_can_operate(request)}
    template = "batches/batch_detail.html"
    if request.htmx:
        template += "#batch-status"
    return render(request, template, context)


@require_POST
def batch_cancel(request: HttpRequest, batch_id: str) -> HttpResponse:
    try:
        validate_id(batch_id)
    except InvalidId as err:
        raise Http404(str(err)) from err
    if not user_can_operate(request):
        return HttpResponseForbidden("You may look at batches but not cancel them.")
    try:
        services.batch_cancel(actor=actor_name(request), batch_id=batch_id)
    except UpstreamConflict as err:
        messages.warning(request, f"This batch could not be cancelled: it has already finished. {err.upstream_message or ''}".strip())
    except UpstreamNotFound as err:
        raise Http404(str(err)) from err
    except UpstreamError as err:
        messages.error(request, f"Cancel failed: {err}")
    else:
        messages.success(request, "Cancel requested. The batch is cancelling; this page updates when it is cancelled.")
    return redirect("batches:detail", batch_id=batch_id)


def root(request: HttpRequest) -> HttpResponse:
    return redirect("batches:list")
