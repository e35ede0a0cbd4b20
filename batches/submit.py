"""Creating a batch from the create form: claim the form's one-time token, take the check of the file
made while it arrived (or check it now, as a stream), upload it, create the batch. Each step that can
fail says which step failed, so the page can tell the operator exactly what happened and what is left to
do (an uploaded file is never lost)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from . import services
from .upstream import Batch, UpstreamError
from .forms import BatchCreateForm
from .jsonl import ValidationResult, validate_jsonl
from .models import CreateSubmission
from .projects import Project
from .results import write_retry_file

logger = logging.getLogger(__name__)


@dataclass
class CreateOutcome:
    batch: Batch | None = None
    validation: ValidationResult | None = None
    error: UpstreamError | None = None
    #: The file id when the upload succeeded but creating the batch did not.
    uploaded_file_id: str | None = None
    endpoint: str | None = None
    #: The earlier submission with the same token, when this is a repeat.
    duplicate: CreateSubmission | None = None
    nothing_to_retry: bool = False


def submission_claim(project: Project, token: str, actor: str) -> CreateSubmission | None:
    """Claim ``token`` for this submit. Returns the earlier submission when the token was already
    used (and did not fail), else None. The unique constraint decides races between two requests."""
    try:
        with transaction.atomic():
            CreateSubmission.objects.create(token=token, project=project.slug, actor=actor)
        return None
    except IntegrityError:
        pass
    # A submit that failed (invalid file, upstream down) may be sent again with the same form.
    reclaimed = CreateSubmission.objects.filter(
        token=token, project=project.slug, state=CreateSubmission.State.FAILED
    ).update(state=CreateSubmission.State.PENDING, batch_id="")
    if reclaimed:
        return None
    # A token of another project is a repeat too: the form belongs to the project it was made in.
    return CreateSubmission.objects.get(token=token)


def _finish(token: str, outcome: CreateOutcome) -> None:
    if outcome.batch is not None:
        state, batch_id = CreateSubmission.State.DONE, outcome.batch.id
    else:
        state, batch_id = CreateSubmission.State.FAILED, ""
    CreateSubmission.objects.filter(token=token).update(
        state=state, batch_id=batch_id, file_id=outcome.uploaded_file_id or ""
    )


def _run_once(project: Project, token: str, actor: str, work) -> CreateOutcome:
    earlier = submission_claim(project, token, actor)
    if earlier is not None:
        return CreateOutcome(duplicate=earlier)
    outcome = CreateOutcome()
    try:
        outcome = work()
    finally:
        _finish(token, outcome)
    return outcome


def batch_create_from_form(project: Project, form: BatchCreateForm, *, actor: str) -> CreateOutcome:
    """Run a valid create form. Never raises :class:`UpstreamError`: it is in the outcome."""
    return _run_once(project, form.cleaned_data["token"], actor, lambda: _create(project, form, actor))


def _create(project: Project, form: BatchCreateForm, actor: str) -> CreateOutcome:
    upload = form.cleaned_data.get("file")
    endpoint = form.chosen_endpoint
    uploaded_file_id = None
    if upload:
        fileobj = upload.file
        check = getattr(upload, "jsonl_check", None)  # checked while it arrived (batches.uploads)
        if check is not None:
            validation = check.result(endpoint=endpoint, size=upload.size)
        else:
            fileobj.seek(0)
            validation = validate_jsonl(fileobj, endpoint=endpoint, size=upload.size)
        if not validation.ok:
            return CreateOutcome(validation=validation)
        endpoint = endpoint or validation.url
        fileobj.seek(0)
        try:
            uploaded = services.file_upload(project, actor=actor, fileobj=fileobj, filename=upload.name or "batch.jsonl")
        except UpstreamError as err:
            return CreateOutcome(validation=validation, error=err, endpoint=endpoint)
        uploaded_file_id = input_file_id = uploaded.id
    else:
        input_file_id = form.cleaned_data["input_file_id"]
    try:
        batch = services.batch_create(
            project,
            actor=actor,
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=form.cleaned_data["completion_window"],
            metadata=form.metadata or None,
            output_expires_after_seconds=form.output_expires_seconds,
        )
    except UpstreamError as err:
        return CreateOutcome(error=err, uploaded_file_id=uploaded_file_id or input_file_id, endpoint=endpoint)
    return CreateOutcome(batch=batch, uploaded_file_id=uploaded_file_id, endpoint=endpoint)


def batch_retry_failed(project: Project, batch: Batch, *, token: str, actor: str) -> CreateOutcome:
    """A new batch from the input lines of ``batch`` that did not succeed, linked by metadata."""
    return _run_once(project, token, actor, lambda: _retry(project, batch, actor))


def _retry(project: Project, batch: Batch, actor: str) -> CreateOutcome:
    try:
        handle, count = write_retry_file(project, batch)
    except UpstreamError as err:
        return CreateOutcome(error=err)
    with handle:
        if count == 0:
            return CreateOutcome(nothing_to_retry=True)
        try:
            uploaded = services.file_upload(project, actor=actor, fileobj=handle, filename=f"{batch.id}_retry.jsonl")
        except UpstreamError as err:
            return CreateOutcome(error=err)
    try:
        new_batch = services.batch_create(
            project,
            actor=actor,
            input_file_id=uploaded.id,
            endpoint=batch.endpoint,
            completion_window=batch.completion_window or "24h",
            metadata={"retry_of": batch.id},
        )
    except UpstreamError as err:
        return CreateOutcome(error=err, uploaded_file_id=uploaded.id, endpoint=batch.endpoint)
    return CreateOutcome(batch=new_batch, uploaded_file_id=uploaded.id, endpoint=batch.endpoint)
