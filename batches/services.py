"""Business logic between the views and the upstream client.

Views call these functions, never the client directly: this is where reads are shared between viewers
(cache) and where every state-changing action is written to the audit trail before and after the
upstream call.
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Iterator, Mapping

from django.utils import timezone

from . import cache
from .client import Batch, BatchPage, FileObject, UpstreamError, get_client, validate_id
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


# Reads are shared between viewers for settings.DASHBOARD_CACHE_SECONDS (see batches/cache.py). Ids are
# validated first, so an invalid id neither reaches the upstream nor becomes a cache key.


def batch_list(*, after: str | None, limit: int) -> BatchPage:
    if after:
        validate_id(after)
    return cache.shared_read(
        ("list", after or "", limit), lambda: get_client().list_batches(after=after, limit=limit)
    )


def batch_retrieve(batch_id: str) -> Batch:
    validate_id(batch_id)
    return cache.shared_read(("batch", batch_id), lambda: get_client().retrieve_batch(batch_id))


def _refresh_after_action(batch: Batch | None) -> None:
    """After a create or cancel: nothing cached before it is served again (all list pages and batches,
    in every process), and the batch the action returned is what the next viewer sees."""
    cache.invalidate()
    if batch is not None:
        cache.remember(("batch", batch.id), batch)


def batch_cancel(*, actor: str, batch_id: str) -> Batch:
    batch = None
    try:
        with audited(actor, AuditEntry.Action.CANCEL, batch_id=batch_id) as entry:
            batch = get_client().cancel_batch(batch_id)
            entry.message = f"status {batch.status}"
    finally:
        # Also after a failure: a 409 means the batch moved on, and a broken connection may hide a
        # cancel that did happen.
        _refresh_after_action(batch)
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
    _refresh_after_action(batch)
    return batch


def file_retrieve(file_id: str) -> FileObject:
    validate_id(file_id, "file")
    return cache.shared_read(("file", file_id), lambda: get_client().retrieve_file(file_id))


def file_content(file_id: str):
    return get_client().open_file_content(file_id)
