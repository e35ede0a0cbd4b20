"""Writes to a project's upstream: every state-changing action is written to the audit trail before
the upstream call and completed after it, and what was cached before it is forgotten after it.

Creating a batch (from the create form, or to retry the failed requests of a finished one) claims the
form's one-time token first, so a double submit creates one batch. A submit that creates no batch
raises one of the :class:`SubmissionRefused` exceptions below, each naming the step that stopped it, so
the page can tell the operator exactly what happened and what is left to do (an uploaded file is never
lost). Reading the upstream failed: the :class:`UpstreamError` itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.utils import timezone

from . import cache
from .index.store import record_action_result, record_created_by
from .costs.budgets import budget_enforce, file_estimate
from .jsonl import ValidationResult, validate_jsonl
from .models import AuditEntry, CreateSubmission
from .projects import Project
from .results import write_retry_file
from .upstream import Batch, FileObject, UpstreamError, client_for


class SubmissionRefused(Exception):
    """A create or retry submit that created no batch."""


class DuplicateSubmission(SubmissionRefused):
    """The form was already submitted, and that submit created ``submission.batch_id``."""

    def __init__(self, submission: CreateSubmission) -> None:
        super().__init__(f"This form already created batch {submission.batch_id}.")
        self.submission = submission


class SubmissionInProgress(SubmissionRefused):
    """The form was already submitted, and that submit is still running: nothing was done."""

    def __init__(self, submission: CreateSubmission) -> None:
        super().__init__("This form was already submitted and is still being processed.")
        self.submission = submission


class InvalidUpload(SubmissionRefused):
    """The JSONL file has problems (``validation.errors``): nothing was uploaded."""

    def __init__(self, validation: ValidationResult) -> None:
        super().__init__(f"The file was not uploaded: {validation.error_count} problem(s) found.")
        self.validation = validation


class UploadFailed(SubmissionRefused):
    """Uploading the input file failed: nothing is upstream. The message is the upstream error's."""

    def __init__(self, error: UpstreamError, *, endpoint: str | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.endpoint = endpoint


class UploadedButNotCreated(SubmissionRefused):
    """The input file ``file_id`` is upstream (uploaded by this submit, or given by id) but creating
    the batch from it failed. The message is the upstream error's."""

    def __init__(self, file_id: str, error: UpstreamError, *, endpoint: str | None = None) -> None:
        super().__init__(str(error))
        self.file_id = file_id
        self.error = error
        self.endpoint = endpoint


class OverBudget(SubmissionRefused):
    """The project's budget refuses new batches (``block_at_limit``): nothing was uploaded or created.
    The message names the budget and the spend; the refusal is in the audit trail."""


def _budget_check(project: Project, actor: str, fileobj=None) -> None:
    allowed, sentence = budget_enforce(project, file_estimate(project, fileobj), actor=actor)
    if not allowed:
        raise OverBudget(sentence)


class NothingToRetry(SubmissionRefused):
    """Every request of the batch succeeded: a retry batch would be empty."""

    def __init__(self) -> None:
        super().__init__("Every request of this batch succeeded: there is nothing to retry.")


@contextmanager
def audited(project: Project, actor: str, action: str, *, batch_id: str = "", file_id: str = "") -> Iterator[AuditEntry]:
    """Record an attempt before the upstream call and its outcome after it (even when it fails)."""
    entry = AuditEntry.objects.create(project=project.slug, actor=actor, action=action, batch_id=batch_id, file_id=file_id)
    try:
        yield entry
    except UpstreamError as err:
        entry.outcome = AuditEntry.Outcome.ERROR
        entry.message = str(err)
        entry.upstream_status = err.status_code
        entry.upstream_request_id = err.request_id or ""
        raise
    except Exception as err:
        entry.outcome = AuditEntry.Outcome.ERROR
        entry.message = f"Internal error: {type(err).__name__}"
        raise
    else:
        if entry.outcome == AuditEntry.Outcome.PENDING:
            entry.outcome = AuditEntry.Outcome.SUCCESS
    finally:
        entry.finished_at = timezone.now()
        entry.save()


def _record_answer(entry: AuditEntry, answer: Batch | FileObject) -> None:
    """The upstream's status and request id of a successful call, as for a failed one."""
    entry.upstream_status = answer.http_status
    entry.upstream_request_id = answer.request_id or ""


def _refresh_after_action(project: Project, batch: Batch | None) -> None:
    """After a create or cancel: nothing of the project cached before it is served again (in every
    process), and the batch the action returned is what the next viewer sees."""
    cache.invalidate(project.slug)
    if batch is not None:
        cache.remember(project.slug, ("batch", batch.id), batch)
    if batch is not None:
        record_action_result(project.slug, batch)


def batch_request_cancel(project: Project, *, actor: str, batch_id: str) -> Batch:
    batch = None
    try:
        with audited(project, actor, AuditEntry.Action.CANCEL, batch_id=batch_id) as entry:
            batch = client_for(project).cancel_batch(batch_id)
            _record_answer(entry, batch)
            entry.message = f"status {batch.status}"
    finally:
        # Also after a failure: a 409 means the batch moved on, and a broken connection may hide a
        # cancel that did happen.
        _refresh_after_action(project, batch)
    return batch


def file_upload(project: Project, *, actor: str, fileobj, filename: str) -> FileObject:
    with audited(project, actor, AuditEntry.Action.UPLOAD) as entry:
        uploaded = client_for(project).upload_file(fileobj, filename)
        _record_answer(entry, uploaded)
        entry.file_id = uploaded.id
    return uploaded


def batch_create_from_file(
    project: Project,
    *,
    actor: str,
    input_file_id: str,
    endpoint: str,
    completion_window: str = "24h",
    metadata: Mapping[str, str] | None = None,
    output_expires_after_seconds: int | None = None,
) -> Batch:
    with audited(project, actor, AuditEntry.Action.CREATE, file_id=input_file_id) as entry:
        batch = client_for(project).create_batch(
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            output_expires_after_seconds=output_expires_after_seconds,
        )
        _record_answer(entry, batch)
        entry.batch_id = batch.id
    _refresh_after_action(project, batch)
    record_created_by(project.slug, batch.id, actor)
    return batch


def batch_create_inline(project: Project, *, actor: str, fileobj) -> Batch:
    """Create a batch whose requests go in the create call itself (Anthropic's Message Batches), from a
    checked JSONL file on disk, streamed."""
    with audited(project, actor, AuditEntry.Action.CREATE) as entry:
        batch = client_for(project).create_batch_inline(fileobj)
        _record_answer(entry, batch)
        entry.batch_id = batch.id
    _refresh_after_action(project, batch)
    from .index.store import record_created_by

    record_created_by(project.slug, batch.id, actor)
    return batch


def submission_claim(project: Project, token: str, actor: str) -> CreateSubmission:
    """Claim ``token`` for this submit: its new (or failed, hence reusable) submission row. Raises
    :class:`DuplicateSubmission` or :class:`SubmissionInProgress` when another submit holds it. The
    unique constraint decides races between two requests."""
    try:
        with transaction.atomic():
            return CreateSubmission.objects.create(token=token, project=project.slug, actor=actor)
    except IntegrityError:
        pass
    # A submit that failed (invalid file, upstream down) may be sent again with the same form.
    reclaimed = CreateSubmission.objects.filter(
        token=token, project=project.slug, state=CreateSubmission.State.FAILED
    ).update(state=CreateSubmission.State.PENDING, batch_id="", file_id="")
    # A token of another project is a repeat too: the form belongs to the project it was made in.
    submission = CreateSubmission.objects.get(token=token)
    if reclaimed:
        return submission
    if submission.batch_id:
        raise DuplicateSubmission(submission)
    raise SubmissionInProgress(submission)


@contextmanager
def submission_recorded(project: Project, token: str, actor: str) -> Iterator[CreateSubmission]:
    """Claim ``token`` (see :func:`submission_claim`), run the block once, and record how it ended:
    done, with the ``batch_id`` the block set, or failed, so that the same form may be sent again."""
    submission = submission_claim(project, token, actor)
    try:
        yield submission
    finally:
        if submission.batch_id:
            submission.state = CreateSubmission.State.DONE
        else:
            submission.state = CreateSubmission.State.FAILED
        submission.save(update_fields=["state", "batch_id", "file_id", "updated_at"])


def _submission_batch_create(
    project: Project, submission: CreateSubmission, *, actor: str, endpoint: str, **options
) -> Batch:
    """Create the batch from ``submission.file_id``, already upstream; record it on the submission."""
    try:
        batch = batch_create_from_file(project, actor=actor, input_file_id=submission.file_id, endpoint=endpoint, **options)
    except UpstreamError as err:
        raise UploadedButNotCreated(submission.file_id, err, endpoint=endpoint) from err
    submission.batch_id = batch.id
    return batch


def batch_create_from_upload(
    project: Project, *, token: str, actor: str, upload: UploadedFile | None, input_file_id: str = "",
    endpoint: str | None, completion_window: str, metadata: Mapping[str, str] | None = None,
    output_expires_after_seconds: int | None = None,
) -> Batch:
    """Check ``upload`` (the check made while it arrived, or one now, as a stream), upload it and create
    the batch from it; or create the batch from ``input_file_id``. ``endpoint`` None: the file's."""
    client = client_for(project)
    with submission_recorded(project, token, actor) as submission:
        if upload:
            check = getattr(upload, "jsonl_check", None)  # checked while it arrived (batches.uploads)
            if check is not None and check.provider == project.provider:
                validation = check.result(endpoint=endpoint, size=upload.size)
            else:
                upload.file.seek(0)
                validation = validate_jsonl(upload.file, endpoint=endpoint, size=upload.size, provider=project.provider)
            if not validation.ok:
                raise InvalidUpload(validation)
            _budget_check(project, actor, upload.file)
            if not client.uploads_files:
                try:
                    batch = batch_create_inline(project, actor=actor, fileobj=upload.file)
                except UpstreamError as err:
                    raise UploadFailed(err) from err
                submission.batch_id = batch.id
                return batch
            endpoint = endpoint or validation.url
            upload.file.seek(0)
            try:
                uploaded = file_upload(project, actor=actor, fileobj=upload.file, filename=upload.name or "batch.jsonl")
            except UpstreamError as err:
                raise UploadFailed(err, endpoint=endpoint) from err
            submission.file_id = uploaded.id
        else:
            _budget_check(project, actor)
            submission.file_id = input_file_id
        return _submission_batch_create(
            project,
            submission,
            actor=actor,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata or None,
            output_expires_after_seconds=output_expires_after_seconds,
        )


def batch_retry_failed(project: Project, batch: Batch, *, token: str, actor: str) -> Batch:
    """A new batch from the input lines of ``batch`` that did not succeed, linked by metadata. Raises
    :class:`UpstreamError` when the batch's files can not be read."""
    with submission_recorded(project, token, actor) as submission:
        handle, count = write_retry_file(project, batch)
        with handle:
            if count == 0:
                raise NothingToRetry()
            _budget_check(project, actor, handle)
            try:
                uploaded = file_upload(project, actor=actor, fileobj=handle, filename=f"{batch.id}_retry.jsonl")
            except UpstreamError as err:
                raise UploadFailed(err, endpoint=batch.endpoint) from err
        submission.file_id = uploaded.id
        return _submission_batch_create(
            project,
            submission,
            actor=actor,
            endpoint=batch.endpoint,
            completion_window=batch.completion_window or "24h",
            metadata={"retry_of": batch.id},
        )
