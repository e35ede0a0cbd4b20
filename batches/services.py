"""Writes to a project's upstream: every state-changing action is written to the audit trail before
the upstream call and completed after it, and what was cached before it is forgotten after it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from django.utils import timezone

from . import cache
from .models import AuditEntry
from .projects import Project
from .upstream import Batch, FileObject, UpstreamError, client_for


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
    from .index.store import record_action_result

    if batch is not None:
        record_action_result(project.slug, batch)


def batch_cancel(project: Project, *, actor: str, batch_id: str) -> Batch:
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


def batch_create(
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
    from .index.store import record_created_by

    record_created_by(project.slug, batch.id, actor)
    return batch
