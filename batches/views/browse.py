"""List, detail and cancel: the pages operators live in.

Each view makes at most one upstream call per page view (cancel: one cancel, plus one retrieve only
when the cancel was refused, to show the batch's fresh state). Views pick the full page or an htmx
partial with a visible ``if``; upstream failures become an honest status code and a sentence.

Where in the list a request is (cursor, page size, the way back) is ``live_list.py``.
"""

from __future__ import annotations

import logging

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from .. import selectors, services
from ..conf import conf
from ..access import actor_name, may_operate, project_view
from ..projects import Project
from ..upstream import Batch, InvalidId, UpstreamConflict, UpstreamError, UpstreamNotFound, validate_id
from ..index.filters import Filters, has_filters
from ..live_list import parse_list_params
from ..vocabulary import PAGE_SIZES, STATUS_ORDER
from . import find, standin
from .errors import upstream_error_response, with_retry_after
from .pages import render_page

logger = logging.getLogger("batches.views")

@require_safe
@vary_on_headers("HX-Request")
@project_view
def batch_list(request: HttpRequest, project: Project) -> HttpResponse:
    if (short := find.compact_redirect(request)) is not None:
        return short
    if has_filters(request.GET):
        # Any filter: served from the dashboard's index (views/find.py); without one, the API live.
        return find.project_find(request, project)
    position, problems = parse_list_params(request.GET, project.slug)
    context = {
        "position": position,
        "problems": problems,
        "can_operate": may_operate(request, project),
        "poll_seconds": conf().poll_seconds_text,
        "page": None,
        "error": None,
        "live": False,
        "next_url": None,
        "page_sizes": sorted({*PAGE_SIZES, position.limit}),
    }
    try:
        page = selectors.batch_page_get(project, after=position.after, limit=position.limit)
    except UpstreamError as err:
        logger.warning(
            "batch list failed: %s status=%s request_id=%s", type(err).__name__, err.status_code, err.request_id
        )
        stand_in = standin.stand_in_page(project, position.after, position.limit, err)
        if stand_in is None:
            context["error"] = err
        else:  # the index stands in; the table keeps polling until the API answers again
            page, sentence = stand_in
            context.update(page=page, next_url=position.next_url(page.next_after), live=True)
            context["problems"] = [*problems, sentence]
    else:
        context["page"] = page
        context["next_url"] = position.next_url(page.next_after)
        # One list request refreshes every unfinished row on the page (no per-row polling).
        context["live"] = any(not batch.is_terminal for batch in page.data)
    error = context["error"]
    if error is not None:
        status = error.http_status
    elif problems and not request.htmx:
        status = 400
    else:
        # htmx swaps only 2xx answers, so a corrected page size is a 200 carrying the warning.
        status = 200
    template = "batches/batch_list.html"
    if request.htmx:
        template += "#batch-table"
    else:
        # The filter form, empty (its own page-size list gives way to the live list's).
        context = {**find.form_choices(Filters(), list(STATUS_ORDER)), **context, "index_chips": find.project_chips(project)}
    return with_retry_after(render(request, template, context, status=status), error)


def _detail_context(request: HttpRequest, project: Project, batch: Batch, notice: dict | None = None) -> dict:
    return {
        "batch": batch,
        "can_operate": may_operate(request, project),
        "poll_seconds": conf().poll_seconds_text,
        "notice": notice,
    }


def batch_or_404(project: Project, batch_id: str) -> Batch:
    """The batch, or a 404 page with one wording for "no such batch" wherever it is looked up."""
    try:
        validate_id(batch_id)
        return selectors.batch_get(project, batch_id)
    except InvalidId as err:
        raise Http404(str(err)) from err
    except UpstreamNotFound as err:
        raise Http404(no_such_batch(project, batch_id)) from err


def no_such_batch(project: Project, batch_id: str) -> str:
    return f"There is no batch “{batch_id}” in project {project.name}: the Batch API does not know this id."


@require_safe
@vary_on_headers("HX-Request")
@project_view
def batch_detail(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    notice = None
    try:
        batch = batch_or_404(project, batch_id)
    except UpstreamError as err:
        stand_in = standin.stand_in_batch(project, batch_id, err)
        if stand_in is None:
            return upstream_error_response(request, err, title="Could not load this batch")
        batch, notice = stand_in
    context = _detail_context(request, project, batch, notice)
    return render_page(request, "batches/batch_detail.html", "batch-live", context)


CANCEL_REQUESTED = (
    "Cancel requested. The batch is cancelling: requests already running may still finish (up to 10 minutes). "
    "This updates by itself."
)


@require_POST
@project_view
def batch_cancel(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    try:
        validate_id(batch_id)
    except InvalidId as err:
        raise Http404(str(err)) from err
    if not may_operate(request, project):
        raise PermissionDenied("You may look at batches but not cancel them.")
    batch = None
    try:
        batch = services.batch_request_cancel(project, actor=actor_name(request), batch_id=batch_id)
    except UpstreamConflict as err:
        said = f" The API said: “{err.upstream_message}”" if err.upstream_message else ""
        level, text = messages.WARNING, f"Not cancelled: this batch has already finished.{said}"
    except UpstreamNotFound as err:
        raise Http404(no_such_batch(project, batch_id)) from err
    except UpstreamError as err:
        level, text = messages.ERROR, f"Cancel failed: {err}"
    else:
        level, text = messages.SUCCESS, CANCEL_REQUESTED
    if not request.htmx:
        # Post/redirect/get: the detail page shows the message and the batch's fresh state.
        messages.add_message(request, level, text)
        return redirect("batches:detail", project=project.slug, batch_id=batch_id)

    # htmx: answer with the region that sent the form, so the result shows at once. A refused cancel
    # shows the batch's fresh state; the region keeps polling while the batch is unfinished.
    notice = {"level": messages.DEFAULT_TAGS[level], "text": text}
    from_row = (request.htmx.target or "").startswith("row-")
    if batch is None:
        try:
            batch = selectors.batch_get(project, batch_id)
        except UpstreamError as err:
            context = {"batch_id": batch_id, "notice": notice, "error": err, "poll_seconds": conf().poll_seconds_text}
            template = "batches/batch_list.html#batch-row-unavailable" if from_row else "batches/batch_detail.html#live-unavailable"
            return render(request, template, context)
    context = _detail_context(request, project, batch, notice)
    if from_row:
        return render(request, "batches/batch_list.html#batch-row", context)
    return render(request, "batches/batch_detail.html#batch-live", context)
