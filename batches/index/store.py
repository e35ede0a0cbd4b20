"""Writing batches into the index. One function turns an upstream :class:`Batch` into its row, so
the sync, the webhooks and the dashboard's own actions store exactly the same thing."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from ..models import BatchRecord
from ..upstream import Batch

ROW_FIELDS = (
    "status", "endpoint", "model", "created_at", "in_progress_at", "finalizing_at", "completed_at", "failed_at",
    "expired_at", "cancelling_at", "cancelled_at", "expires_at", "total_requests", "completed_requests",
    "failed_requests", "metadata", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens",
    "total_tokens", "input_file_id", "output_file_id", "error_file_id", "search_text", "raw", "last_synced",
)


def search_text(batch: Batch) -> str:
    """Ids and metadata values, lower-cased, one per line: what ``q`` matches (case-insensitive)."""
    parts = [batch.id, batch.input_file_id or "", batch.output_file_id or "", batch.error_file_id or ""]
    parts.extend(str(value) for value in (batch.metadata or {}).values())
    return "\n".join(part.lower() for part in parts if part)


def row_values(batch: Batch, now=None) -> dict:
    counts = batch.request_counts
    usage = batch.usage
    return {
        "status": batch.status[:32],
        "endpoint": (batch.endpoint or "")[:100],
        "model": (batch.model or "")[:200],
        "created_at": batch.created_at,
        "in_progress_at": batch.in_progress_at,
        "finalizing_at": batch.finalizing_at,
        "completed_at": batch.completed_at,
        "failed_at": batch.failed_at,
        "expired_at": batch.expired_at,
        "cancelling_at": batch.cancelling_at,
        "cancelled_at": batch.cancelled_at,
        "expires_at": batch.expires_at,
        "total_requests": counts.total if counts else 0,
        "completed_requests": counts.completed if counts else 0,
        "failed_requests": counts.failed if counts else 0,
        "metadata": dict(batch.metadata or {}),
        "input_tokens": usage.input_tokens if usage else None,
        "cached_tokens": usage.cached_tokens if usage else None,
        "output_tokens": usage.output_tokens if usage else None,
        "reasoning_tokens": usage.reasoning_tokens if usage else None,
        "total_tokens": usage.total_tokens if usage else None,
        "input_file_id": (batch.input_file_id or "")[:200],
        "output_file_id": (batch.output_file_id or "")[:200],
        "error_file_id": (batch.error_file_id or "")[:200],
        "search_text": search_text(batch),
        "raw": dict(batch.raw),
        "last_synced": now or timezone.now(),
    }


def upsert_batches(project: str, batches: Iterable[Batch], now=None) -> dict[str, tuple[str | None, str]]:
    """Insert or update ``batches`` of ``project`` in one transaction. Returns, for each batch whose
    status changed (or that is new), ``{batch_id: (old status or None, new status)}``, so callers can
    record the change (samples, notifications)."""
    now = now or timezone.now()
    batches = [batch for batch in batches if len(batch.id) <= 200]
    if not batches:
        return {}
    changes: dict[str, tuple[str | None, str]] = {}
    with transaction.atomic():
        existing = {
            record.batch_id: record
            for record in BatchRecord.objects.select_for_update().filter(
                project=project, batch_id__in=[batch.id for batch in batches]
            )
        }
        new_rows, changed_rows = [], []
        for batch in batches:
            values = row_values(batch, now)
            record = existing.get(batch.id)
            if record is None:
                new_rows.append(BatchRecord(project=project, batch_id=batch.id, **values))
                changes[batch.id] = (None, values["status"])
                continue
            if record.status != values["status"]:
                changes[batch.id] = (record.status, values["status"])
            for name, value in values.items():
                setattr(record, name, value)
            changed_rows.append(record)
        if new_rows:
            # ignore_conflicts: another instance (a webhook, an overlapping pass) may have inserted the
            # same batch since we looked; the unique key keeps one row and the next pass refreshes it.
            BatchRecord.objects.bulk_create(new_rows, ignore_conflicts=True, batch_size=500)
        if changed_rows:
            BatchRecord.objects.bulk_update(changed_rows, ROW_FIELDS, batch_size=500)
    return changes


def record_action_result(project: str, batch: Batch) -> dict:
    """The index learns what a create or cancel through the dashboard answered, at once."""
    return upsert_batches(project, [batch])


def record_created_by(project: str, batch_id: str, actor: str) -> None:
    BatchRecord.objects.filter(project=project, batch_id=batch_id).update(created_by=actor[:254])
