"""Writing batches into the index. One function turns an upstream :class:`Batch` into its row, so
the sync, the webhooks and the dashboard's own actions store exactly the same thing."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from ..models import BatchRecord, BatchSample, SyncState
from ..upstream import TERMINAL_STATUSES, Batch, batch_from_raw
from ..upstream.types import STATUS_TIMESTAMPS
from .selectors import project_generation
from .signals import batches_changed

logger = logging.getLogger(__name__)

#: What the results' line usage sets (``record_result_usage``), kept while the batch reports none.
RESULT_USAGE_FIELDS = ("model", "input_tokens", "cached_tokens", "output_tokens", "total_tokens")


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
        "provider": batch.provider[:16],
        "provider_status": (batch.provider_status or "")[:32],
        "price_model": (batch.price_model or "")[:200],
    }


def upsert_batches(
    project: str, batches: Iterable[Batch], now=None, *, samples: bool = False, source: str = "index"
) -> dict[str, tuple[str | None, str]]:
    """Insert or update ``batches`` of ``project`` in one transaction. Returns, for each batch whose
    status changed (or that is new), ``{batch_id: (old status or None, new status)}``, so callers can
    record the change (samples, notifications).

    With ``samples``, a :class:`BatchSample` is written in the same transaction for every unfinished
    batch that is new or whose status or counts changed, and one final sample for a batch that turns
    terminal here (a batch first seen already finished gets none: a backfill writes no history).
    When statuses changed, :data:`~batches.index.signals.batches_changed` is sent after the commit,
    with ``source`` as its sender."""
    now = now or timezone.now()
    batches = [batch for batch in batches if len(batch.id) <= 200]
    if not batches:
        return {}
    changes: dict[str, tuple[str | None, str]] = {}
    sample_rows: list[BatchSample] = []
    with transaction.atomic():
        counted = _current_counts_locked(project)
        existing = {
            record.batch_id: record
            for record in BatchRecord.objects.select_for_update().filter(
                project=project, batch_id__in=[batch.id for batch in batches]
            )
        }
        new_rows, changed_rows, unchanged_pks = [], [], []
        for batch in batches:
            values = row_values(batch, now)
            record = existing.get(batch.id)
            if record is not None and record.result_usage is not None and batch.usage is None:
                values.update({name: getattr(record, name) for name in RESULT_USAGE_FIELDS})
            if samples and _needs_sample(record, values):
                sample_rows.append(
                    BatchSample(
                        project=project,
                        batch_id=batch.id,
                        taken_at=now,
                        status=values["status"],
                        total_requests=values["total_requests"],
                        completed_requests=values["completed_requests"],
                        failed_requests=values["failed_requests"],
                    )
                )
            if record is not None and goes_back(record.status, values["status"]):
                # A snapshot older than the row (a list page read before a webhook's refresh landed):
                # the status stays, only what the row lacks is gained (NOTES.md §4.2).
                logger.info("index: %s %s stays %s (a snapshot said %s)", project, batch.id, record.status, values["status"])
                values = row_values(batch_from_raw(batch.provider, _gains(record, batch), price_model=batch.price_model or ""), now)
            if record is None:
                new_rows.append(BatchRecord(project=project, batch_id=batch.id, **values))
                changes[batch.id] = (None, values["status"])
                continue
            if record.status != values["status"]:
                changes[batch.id] = (record.status, values["status"])
            if all(getattr(record, name) == value for name, value in values.items() if name != "last_synced"):
                unchanged_pks.append(record.pk)  # the common case of a refresh: only the sync time moves
                continue
            changed_rows.append((record.pk, values))
        if new_rows:
            # ignore_conflicts: another instance (a webhook, an overlapping pass) may have inserted the
            # same batch since we looked; the unique key keeps one row and the next pass refreshes it.
            BatchRecord.objects.bulk_create(new_rows, ignore_conflicts=True, batch_size=500)
        if unchanged_pks:
            BatchRecord.objects.filter(pk__in=unchanged_pks).update(last_synced=now)
        # One plain UPDATE per changed row: for the few rows a pass changes this is several times
        # cheaper than bulk_update's CASE over every column (0.4 s for 100 rows on SQLite).
        for pk, values in changed_rows:
            BatchRecord.objects.filter(pk=pk).update(**values)
        if sample_rows:
            BatchSample.objects.bulk_create(sample_rows, batch_size=500)
        if counted is not None:
            _counts_moved(counted, changes)
        if changes:
            sent = dict(changes)
            transaction.on_commit(lambda: _send_changed(source, project, sent))
    return changes


def _current_counts_locked(project: str) -> SyncState | None:
    """The project's stored status counts (:func:`store_counts` below), row-locked until the write
    commits, when they are current: counted at the generation the project's rows still have. Every
    writer of the project's rows passes here first, so writers take turns and a snapshot moved by its
    writer's changes is as exact as a recount."""
    state = SyncState.objects.select_for_update().filter(project=project).first()
    if state is None or state.status_counts is None or not state.counts_generation:
        return None
    if state.counts_generation != project_generation(project):
        return None  # someone wrote since it was counted: the next view (or pass) recounts
    return state


def _counts_moved(state: SyncState, changes: dict[str, tuple[str | None, str]]) -> None:
    """Move the locked snapshot by this write's status changes (a new batch adds one) and stamp it
    with the generation the write left, instead of a GROUP BY on the next view."""
    counts = dict(state.status_counts)
    for old, new in changes.values():
        if old is not None:
            counts[old] = counts.get(old, 0) - 1
            if counts[old] <= 0:
                del counts[old]
        counts[new] = counts.get(new, 0) + 1
    state.status_counts = counts
    state.counts_generation = project_generation(state.project)
    state.save(update_fields=["status_counts", "counts_generation"])


#: Where each known status stands in the lifecycle (NOTES.md §4.2): a row never moves to a lower rank,
#: and a terminal status never changes. Statuses the API adds later have no rank and are taken as sent.
STATUS_RANK = {"validating": 0, "in_progress": 1, "finalizing": 2, "cancelling": 3} | dict.fromkeys(TERMINAL_STATUSES, 4)


def goes_back(stored: str, incoming: str) -> bool:
    """Would writing ``incoming`` over ``stored`` move the batch backwards (or off a final status)?"""
    if stored == incoming:
        return False
    if stored in TERMINAL_STATUSES:
        return True
    return stored in STATUS_RANK and incoming in STATUS_RANK and STATUS_RANK[incoming] < STATUS_RANK[stored]


def _gains(record: BatchRecord, batch: Batch) -> dict:
    """The stored batch (its raw JSON, or its columns) plus what an older-status snapshot adds: file ids
    the row lacks, higher request counts, usage where the row has none."""
    if isinstance(record.raw, dict) and record.raw.get("id") == batch.id:
        merged = dict(record.raw)
    else:
        merged = {**batch.raw, "status": record.status}
        merged.update({name: getattr(record, name) for _, name in STATUS_TIMESTAMPS if getattr(record, name) is not None})
    incoming = batch.raw
    for key in ("input_file_id", "output_file_id", "error_file_id", "usage"):
        if not merged.get(key) and incoming.get(key):
            merged[key] = incoming[key]
    mine, theirs = merged.get("request_counts"), incoming.get("request_counts")
    # Counts that only move when the batch ends (Anthropic's) are whole in the stored row already:
    # an older snapshot's "processing" must not be added back.
    if isinstance(theirs, dict) and batch.counts_live:
        mine = mine if isinstance(mine, dict) else {}
        merged["request_counts"] = {
            key: max(value for value in (mine.get(key), theirs.get(key)) if isinstance(value, int))
            for key in {*mine, *theirs} if isinstance(mine.get(key), int) or isinstance(theirs.get(key), int)
        }
    return merged


def _needs_sample(record: BatchRecord | None, values: dict) -> bool:
    """A sample when an unfinished batch is new or moved (status or counts), and a final one when a
    known unfinished batch turns terminal. Unchanged batches write nothing, so a batch listed twice
    in one pass is sampled at most once."""
    terminal = values["status"] in TERMINAL_STATUSES
    if record is None:
        return not terminal
    if terminal:
        return record.status not in TERMINAL_STATUSES
    return (
        record.status != values["status"]
        or record.total_requests != values["total_requests"]
        or record.completed_requests != values["completed_requests"]
        or record.failed_requests != values["failed_requests"]
    )


def _send_changed(source: str, project: str, changes: dict) -> None:
    for receiver, result in batches_changed.send_robust(sender=source, project=project, changes=changes):
        if isinstance(result, Exception):
            logger.error(
                "batches_changed receiver %s failed for project %s: %s",
                getattr(receiver, "__qualname__", receiver), project, result,
                exc_info=(type(result), result, result.__traceback__),
            )


def record_action_result(project: str, batch: Batch) -> dict:
    """The index learns what a create or cancel through the dashboard answered, at once."""
    return upsert_batches(project, [batch], samples=True, source="dashboard")


def record_result_usage(project: str, batch_id: str, usage: dict) -> int:
    """Keep the usage summed from a finished batch's result lines (``{model: UsageTally}``) on its row,
    for a batch whose object reports none (Anthropic's never does). The token columns (what prices and
    totals read) are set when the lines name one model; with several, each model's sum is kept in
    ``result_usage`` and the batch page prices them one by one. Returns the rows updated (0 when the
    batch is not indexed, or reports its own usage)."""
    kept = {
        model: {"input": t.input_tokens, "cached": t.cached_tokens, "output": t.output_tokens, "requests": t.requests}
        for model, t in usage.items()
    }
    fields: dict = {"result_usage": kept}
    if len(kept) == 1:
        (model, tally), = usage.items()
        fields.update(
            model=model[:200], input_tokens=tally.input_tokens, cached_tokens=tally.cached_tokens,
            output_tokens=tally.output_tokens, total_tokens=tally.input_tokens + tally.output_tokens,
        )
    rows = BatchRecord.objects.filter(project=project, batch_id=batch_id)
    # A batch whose object reported usage keeps it: the lines then add nothing the API did not say.
    return rows.filter(result_usage__isnull=False).update(**fields) or rows.filter(input_tokens__isnull=True).update(**fields)


def record_created_by(project: str, batch_id: str, actor: str) -> None:
    BatchRecord.objects.filter(project=project, batch_id=batch_id).update(created_by=actor[:254])


def store_counts(project: str) -> dict[str, int]:
    """After a sync pass or a refresh: count ``project``'s batches by status once, here, and keep the
    counts with the generation they were counted at, so the next page views (in any process) need no
    GROUP BY. The generation is read first: a write while counting makes the snapshot stale, never
    wrong."""
    generation = project_generation(project)
    rows = BatchRecord.objects.filter(project=project).order_by().values("status").annotate(n=Count("pk"))
    counts = {row["status"]: row["n"] for row in rows}
    SyncState.objects.update_or_create(project=project, defaults={"status_counts": counts, "counts_generation": generation})
    return counts
