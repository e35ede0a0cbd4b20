"""Create a batch from a JSONL file (or an uploaded file id)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from .. import services
from ..access import actor_name, may_operate, project_view
from ..projects import Project
from .. import uploads
from ..jsonl import MAX_BYTES, JsonlValidator, limits
from ..upstream import ENDPOINTS, InvalidId, provider_info, validate_id
from ..uploads import streamed_upload
from ..forms import AUTO_ENDPOINT, METADATA_MAX_PAIRS, BatchCreateForm, new_form_token
from ..jsonl import MAX_LISTED_ERRORS
from .pages import render_page

TEMPLATE = "batches/batch_create.html"


def _initial_from_query(request: HttpRequest) -> dict:
    """Prefill from links such as "create from this file id" (…?input_file_id=file-…&endpoint=…)."""
    initial: dict = {"token": new_form_token(), "endpoint": AUTO_ENDPOINT}
    file_id = request.GET.get("input_file_id", "").strip()
    if file_id:
        try:
            validate_id(file_id, "file")
        except InvalidId:
            file_id = ""
    if file_id:
        initial["input_file_id"] = file_id
    if request.GET.get("endpoint") in ENDPOINTS:
        initial["endpoint"] = request.GET["endpoint"]
    retry_of = request.GET.get("retry_of", "")
    if retry_of:
        try:
            validate_id(retry_of)
        except InvalidId:
            retry_of = ""
    if retry_of:
        initial["metadata"] = {"retry_of": retry_of}
    return initial


def _form_again(form: BatchCreateForm, *, file_id: str = "", endpoint: str | None = None) -> BatchCreateForm:
    """The form to show after a failed submit: the operator's choices, a fresh token, and, when the
    upload worked but creating failed, the uploaded file's id instead of the file."""
    return BatchCreateForm(
        initial={
            "token": new_form_token(),
            "input_file_id": file_id or form.cleaned_data.get("input_file_id") or "",
            "endpoint": endpoint or form.cleaned_data.get("endpoint"),
            "completion_window": form.cleaned_data.get("completion_window"),
            "output_expires_hours": form.cleaned_data.get("output_expires_hours"),
            "metadata": form.metadata,
        }
    )


def _render(request: HttpRequest, context: dict, status: int = 200) -> HttpResponse:
    context.setdefault("can_operate", may_operate(request, request.project))
    context.setdefault("metadata_max", METADATA_MAX_PAIRS)
    context.setdefault("listed_errors_max", MAX_LISTED_ERRORS)
    context.setdefault("provider", provider_info(request.project.provider))
    return render_page(request, TEMPLATE, "create-form", context, status=status)


def _go_to_batch(request: HttpRequest, project: Project, batch_id: str) -> HttpResponse:
    url = reverse("batches:detail", args=[project.slug, batch_id])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def _upload_limit(request: HttpRequest) -> int:
    """The most body bytes written: the upload limit, grown by what the project's provider accepts beyond
    OpenAI's 200 MB (Anthropic: 256 MB)."""
    return uploads.UPLOAD_LIMIT + max(limits(provider_info(request.project.provider))[1] - MAX_BYTES, 0)


def _line_check(request: HttpRequest) -> JsonlValidator:
    """The project's provider's line shape and limits, checked while the file arrives."""
    return JsonlValidator(request.project.provider)


@require_http_methods(["GET", "HEAD", "POST"])
@vary_on_headers("HX-Request")
@project_view
@streamed_upload(
    "file", allowed=lambda request: may_operate(request, request.project), limit=_upload_limit, check=_line_check
)
def batch_create(request: HttpRequest, project: Project) -> HttpResponse:
    if not may_operate(request, project):
        return _render(request, {"form": None, "forbidden": True}, status=403)
    if request.method != "POST":
        return _render(request, {"form": BatchCreateForm(initial=_initial_from_query(request))})

    form = BatchCreateForm(
        request.POST, request.FILES, upload_too_large=request.upload_too_large,
        uses_files=provider_info(project.provider).files,
    )
    if not form.is_valid():
        form.data = form.data.copy()
        form.data["token"] = new_form_token()
        return _render(request, {"form": form}, status=413 if form.upload_too_large else 400)

    try:
        batch = services.batch_create_from_upload(
            project,
            token=form.cleaned_data["token"],
            actor=actor_name(request),
            upload=form.cleaned_data.get("file"),
            input_file_id=form.cleaned_data["input_file_id"],
            endpoint=form.chosen_endpoint,
            completion_window=form.cleaned_data["completion_window"],
            metadata=form.metadata,
            output_expires_after_seconds=form.output_expires_seconds,
        )
    except services.DuplicateSubmission as err:
        messages.info(request, "This form was already submitted; this is the batch it created.")
        return _go_to_batch(request, project, err.submission.batch_id)
    except services.SubmissionInProgress as err:
        return _render(request, {"form": None, "in_progress": err.submission}, status=409)
    except services.InvalidUpload as err:
        context = {"form": _form_again(form), "validation": err.validation, "upload_name": form.cleaned_data["file"].name}
        return _render(request, context, status=400)
    except services.OverBudget as err:
        return _render(request, {"form": _form_again(form), "budget_error": str(err)}, status=403)
    except services.UploadedButNotCreated as err:
        # The file is upstream: offer to create from it, with everything else as the operator chose.
        again = _form_again(form, file_id=err.file_id, endpoint=err.endpoint)
        context = {"form": again, "create_error": err.error, "uploaded_file_id": err.file_id}
        return _render(request, context, status=err.error.http_status)
    except services.UploadFailed as err:
        context = {"form": _form_again(form, endpoint=err.endpoint), "upload_error": err.error}
        return _render(request, context, status=err.error.http_status)
    messages.success(request, f"Batch {batch.id} created.")
    return _go_to_batch(request, project, batch.id)
