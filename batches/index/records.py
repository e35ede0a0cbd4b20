"""From an index row to the shape every page renders: the one way a ``BatchRecord`` becomes a ``Batch``.

The store turns an upstream :class:`~batches.upstream.Batch` into a row (``store.row_values``); this is
its reverse, so the live list, the filtered views, the ETA and the notifications all read one shape
and nothing bridges the two with ``getattr``/``hasattr``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from ..cache import LocalCache
from ..models import BatchRecord, SyncState
from ..upstream import Batch, Usage, batch_from_raw

# Batches made from index rows, kept per process under what they are made of. Every write of a row's
# raw JSON sets its ``last_synced`` (index/store.py), and the other columns read here are in the key,
# so a changed row is a new key. A Batch is frozen and shared: nothing may change it.
BATCHES_MADE: LocalCache[tuple, Batch] = LocalCache(maxsize=4000)

def batch_from_record(record: BatchRecord) -> Batch:
    """The row as the upstream object it was indexed from (its raw JSON), so a filtered view renders
    exactly as the live list does. A row without usable raw JSON (or read with ``raw`` deferred, as
    the export does) is rebuilt from its columns."""
    raw = None
    if "raw" not in record.get_deferred_fields():
        raw = record.raw if isinstance(record.raw, dict) and record.raw.get("id") == record.batch_id else None
    provider = record.provider or "openai"
    if raw is None:
        batch = Batch.from_api(_raw_from_columns(record), provider=provider)
        return dataclasses.replace(batch, price_model=record.price_model or None)
    # Each provider's raw object is read by its own client's parser (an Anthropic batch is not OpenAI-shaped).
    batch = batch_from_raw(provider, raw, price_model=record.price_model)
    if batch.usage is None and (record.input_tokens is not None or record.output_tokens is not None):
        # Usage the index summed from the result lines (a provider whose batch reports none).
        usage = Usage(input_tokens=record.input_tokens, cached_tokens=record.cached_tokens,
                      output_tokens=record.output_tokens, total_tokens=record.total_tokens)
        batch = dataclasses.replace(batch, usage=usage, model=batch.model or record.model or None)
    return batch


def _made_key(record: BatchRecord) -> tuple:
    return (record.pk, record.batch_id, record.last_synced, record.status, record.completed_requests,
            record.failed_requests, record.provider, record.price_model, record.model,
            record.input_tokens, record.cached_tokens, record.output_tokens, record.total_tokens)


def batches_from_records(records: list[BatchRecord]) -> dict[int, Batch]:
    """``{pk: Batch}`` for index rows, as :func:`batch_from_record` makes them, from
    :data:`BATCHES_MADE` when a row has not changed since. Rows may be read with ``raw`` deferred (a
    page's query then skips decoding every row's JSON): the raw JSON of those not kept is read in one
    query."""
    made: dict[int, Batch] = {}
    missing = []
    for record in records:
        batch = BATCHES_MADE.get(_made_key(record))
        if batch is None:
            missing.append(record)
        else:
            made[record.pk] = batch
    deferred = [record for record in missing if "raw" in record.get_deferred_fields()]
    if deferred:
        raws = dict(BatchRecord.objects.filter(pk__in=[record.pk for record in deferred]).values_list("pk", "raw"))
        for record in deferred:
            record.raw = raws.get(record.pk)
    for record in missing:
        made[record.pk] = batch = batch_from_record(record)
        BATCHES_MADE.put(_made_key(record), batch)
    return made


def _raw_from_columns(record: BatchRecord) -> dict:
    usage = None
    if record.input_tokens is not None or record.output_tokens is not None:
        usage = {
            "input_tokens": record.input_tokens,
            "input_tokens_details": {"cached_tokens": record.cached_tokens},
            "output_tokens": record.output_tokens,
            "output_tokens_details": {"reasoning_tokens": record.reasoning_tokens},
            "total_tokens": record.total_tokens,
        }
    return {
        "id": record.batch_id, "status": record.status, "endpoint": record.endpoint, "model": record.model or None,
        "created_at": record.created_at, "in_progress_at": record.in_progress_at,
        "finalizing_at": record.finalizing_at, "completed_at": record.completed_at, "failed_at": record.failed_at,
        "expired_at": record.expired_at, "cancelling_at": record.cancelling_at, "cancelled_at": record.cancelled_at,
        "expires_at": record.expires_at, "metadata": record.metadata,
        "input_file_id": record.input_file_id or None, "output_file_id": record.output_file_id or None,
        "error_file_id": record.error_file_id or None,
        "request_counts": {"total": record.total_requests, "completed": record.completed_requests,
                           "failed": record.failed_requests},
        "usage": usage,
    }


def finished_at(batch: Batch) -> int | None:
    """When a finished batch reached its final status (unix time): the latest of its final stamps."""
    stamps = [s for s in (batch.completed_at, batch.failed_at, batch.expired_at, batch.cancelled_at) if s is not None]
    return max(stamps) if stamps else None


def finished_datetime(batch: Batch) -> dt.datetime | None:
    end = finished_at(batch)
    return dt.datetime.fromtimestamp(end, tz=dt.UTC) if end is not None else None


def index_holds(project: str, batch_id: str) -> bool:
    """Could the index stand in for this batch's page (``views/standin.py``)?"""
    return BatchRecord.objects.filter(project=project, batch_id=batch_id).exists()


def index_can_list(project: str, after: str | None) -> bool:
    """Could the index stand in for this page of the list: a sync pass has filled it, and it holds the
    cursor's batch?"""
    if not SyncState.objects.filter(project=project, last_success__isnull=False).exists():
        return False
    return after is None or index_holds(project, after)
