"""A batch's results: the joined results page, streamed file downloads, and "retry the failed"."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from .. import results, selectors, services
from ..access import actor_name, may_operate, project_view
from ..forms import new_form_token
from ..projects import Project
from ..upstream import Batch, UpstreamError, UpstreamNotFound
from .browse import batch_or_404
from .errors import upstream_error_response
from .pages import render_page

FILE_KINDS = {"output": "output_file_id", "error": "error_file_id", "input": "input_file_id"}


def _attachment(body, *, filename: str, length: int | None = None) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type="application/jsonl; charset=utf-8")
    # Linkable batch ids hold only [A-Za-z0-9_.:~+=@-] (upstream.ID_PATTERN): safe in a quoted filename.
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    if length is not None:
        response["Content-Length"] = str(length)
    return response


@require_safe
@vary_on_headers("HX-Request")
@project_view
def batch_results(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    query = results.ResultsQueryForm(request.GET)
    failed_only, custom_id = query.values["filter"] == "failed", query.values["custom_id"]
    try:
        batch = batch_or_404(project, batch_id)
        page = None
        # A cancelled or expired batch without result files still has requests that never ran.
        if batch.has_results or batch.status in ("cancelled", "expired"):
            page = results.page_or_preview(
                project, batch, page=query.values["page"], failed_only=failed_only, custom_id=custom_id
            )
    except UpstreamError as err:
        return upstream_error_response(request, err, title="Could not load the results")
    filters = {key: value for key, value in (("filter", "failed" if failed_only else ""), ("custom_id", custom_id)) if value}
    context = {
        "batch": batch,
        "results": page,
        "failed_only": failed_only,
        "custom_id": custom_id,
        "problems": query.problems,
        "filters_active": bool(filters),
        # The pager's links keep the filters: "?filter=failed&custom_id=x&page=" + the page number.
        "page_query": urlencode({**filters, "page": ""}),
        "can_operate": may_operate(request, project),
        "retry_token": new_form_token(),
    }
    return render_page(request, "batches/batch_results.html", "results-table", context)


@require_safe
@project_view
def file_download(request: HttpRequest, project: Project, batch_id: str, kind: str) -> HttpResponse:
    """Stream a batch's output, error or input file (or the results file of a provider without files,
    Anthropic's ``results_url``) through the dashboard, in constant memory."""
    attr = FILE_KINDS.get(kind)
    if attr is None and kind != "results":
        raise Http404("No such file kind.")
    try:
        batch = batch_or_404(project, batch_id)
        if attr is None:
            if not batch.results_url:
                raise Http404("This batch has no results file (yet).")
            content = selectors.results_file_open(project, batch)
        elif not getattr(batch, attr):
            raise Http404(f"This batch has no {kind} file.")
        else:
            content = selectors.file_content_open(project, getattr(batch, attr))
    except UpstreamNotFound as err:
        raise Http404(str(err)) from err
    except UpstreamError as err:
        return upstream_error_response(request, err, title=f"Could not download the {kind} file")
    return _attachment(content, filename=f"{batch.id}_{kind}.jsonl", length=content.content_length)


@require_safe
@project_view
def retry_failed_download(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    """The input lines whose requests did not succeed, as a new input file."""
    try:
        batch = batch_or_404(project, batch_id)
        lines = results.iter_retry_lines(project, batch)
    except UpstreamNotFound as err:
        raise Http404(str(err)) from err
    except UpstreamError as err:
        return upstream_error_response(request, err, title="Could not build the retry file")
    return _attachment(lines, filename=f"{batch.id}_retry.jsonl")


@require_POST
@project_view
def retry_failed_create(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    response = _retry_failed(request, project, batch_id)
    # The htmx button (after its hx-confirm) follows the outcome as a whole page, like a plain POST.
    if request.htmx and response.status_code == 302:
        return HttpResponseClientRedirect(response["Location"])
    return response


def _retry_failed(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    if not may_operate(request, project):
        return HttpResponseForbidden("You may look at batches but not create them.")
    token = request.POST.get("token", "")
    if not token or len(token) > 64:
        messages.error(request, "The retry form was incomplete; open the results page and try again.")
        return redirect("batches:results", project=project.slug, batch_id=batch_id)
    try:
        batch = batch_or_404(project, batch_id)
    except UpstreamError as err:
        return upstream_error_response(request, err, title="Could not load this batch")
    if not batch.is_terminal:
        messages.error(request, "Only a finished batch can be retried: its requests may still succeed.")
        return redirect("batches:results", project=project.slug, batch_id=batch.id)
    if request.POST.get("confirmed") != "yes":
        # Creating a batch costs money: without JavaScript (no hx-confirm) the button leads here first.
        try:
            page = results.results_page(project, batch, failed_only=True)
        except UpstreamError as err:
            return upstream_error_response(request, err, title="Could not read the results")
        if not page.unsucceeded:
            messages.info(request, "Every request of this batch succeeded: there is nothing to retry.")
            return redirect("batches:results", project=project.slug, batch_id=batch.id)
        context = {
            "batch": batch,
            "results": page,
            "failed_only": True,
            "filters_active": True,
            "page_query": urlencode({"filter": "failed", "page": ""}),
            "can_operate": True,
            "retry_token": token,
            "confirm_retry": True,
        }
        return render(request, "batches/batch_results.html", context)
    try:
        new_batch = services.batch_retry_failed(project, batch, token=token, actor=actor_name(request))
    except services.DuplicateSubmission as err:
        messages.info(request, "This retry was already submitted; this is the batch it created.")
        return redirect("batches:detail", project=project.slug, batch_id=err.submission.batch_id)
    except services.SubmissionInProgress:
        messages.warning(request, "This retry was already submitted and is still being processed.")
    except services.NothingToRetry as err:
        messages.info(request, str(err))
    except services.UploadedButNotCreated as err:
        messages.error(request, f"The retry file was uploaded as {err.file_id}, but creating the batch failed: {err}")
        return redirect(_create_from_file_url(project, err.file_id, batch))
    except (services.UploadFailed, UpstreamError) as err:
        messages.error(request, f"The retry batch was not created: {err}")
    else:
        messages.success(request, f"Batch {new_batch.id} created to retry the requests of {batch.id} that did not succeed.")
        return redirect("batches:detail", project=project.slug, batch_id=new_batch.id)
    return redirect("batches:results", project=project.slug, batch_id=batch.id)


def _create_from_file_url(project: Project, file_id: str, batch: Batch) -> str:
    """The create page, prefilled to create the retry batch from the already uploaded file."""
    query = urlencode({"input_file_id": file_id, "endpoint": batch.endpoint, "retry_of": batch.id})
    return f"{reverse('batches:create', args=[project.slug])}?{query}"
