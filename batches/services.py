"""Business logic between the views and the upstream client.

Views call these functions, never the client directly: this is where reads are shared between viewers
(cache) and where every state-changing action is written to the audit trail before and after the
upstream call.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator, Mapping

from django.utils import timezone

from .client import Batch, BatchPage, FileObject, UpstreamError, get_client
from .models import AuditEntry


@contextmanager
def audited(actor: str, action: str, *, batch_id: str = "", file_id: str = "") -> Iterator[AuditEntry]:
    """Record an attempt before the upstream call and its outcome after it (even when it fails)."""
    entry = AuditEntry.objects.create(actor=actor, action=action, batch_id=batch_id, file_id=file_id)
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


def batch_list(*, after: str | None, limit: int) -> BatchPage:
    return get_client().list_batches(after=after, limit=limit)


def batch_retrieve(batch_id: str) -> Batch:
    return get_client().retrieve_batch(batch_id)


def batch_cancel(*, actor: str, batch_id: str) -> Batch:
    with audited(actor, AuditEntry.Action.CANCEL, batch_id=batch_id) as entry:
        batch = get_client().cancel_batch(batch_id)
        entry.message = f"status {batch.status}"
    return batch


def file_upload(*, actor: str, fileobj, filename: str) -> FileObject:
    with audited(actor, AuditEntry.Action.UPLOAD) as entry:
        uploaded = get_client().upload_file(fileobj, filename)
        entry.file_id = uploaded.id
    return uploaded


def batch_create(
    *,
    actor: str,
    input_file_id: str,
    endpoint: str,
    completion_window: str = "24h",
    metadata: Mapping[str, str] | None = None,
    output_expires_after_seconds: int | None = None,
) -> Batch:
    with audited(actor, AuditEntry.Action.CREATE, file_id=input_file_id) as entry:
        batch = get_client().create_batch(
            input_file_id=input_file_id,
            endpoint=endpoint,
            completion_window=completion_window,
            metadata=metadata,
            output_expires_after_seconds=output_expires_after_seconds,
        )
        entry.batch_id = batch.id
    return batch


def file_retrieve(file_id: str) -> FileObject:
    return get_client().retrieve_file(file_id)


def file_content(file_id: str):
    return get_client().open_file_content(file_id)
