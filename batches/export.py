"""Exporting a filtered view: every matching row as CSV or JSON lines, with its estimated cost and
trouble flags, streamed a chunk at a time (a thousand rows never sit in memory)."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections.abc import Iterator

from django.http import StreamingHttpResponse
from django.utils import timezone

from .find_rows import records_oversight
from .index.records import batch_from_record
from .index.selectors import EXPORT_CHUNK
from .models import BatchRecord
from .rows import PagePricer

EXPORT_COLUMNS = (
    "project", "batch_id", "status", "endpoint", "model", "created_at", "in_progress_at", "finalizing_at",
    "completed_at", "failed_at", "expired_at", "cancelling_at", "cancelled_at", "expires_at", "total_requests",
    "completed_requests", "failed_requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens",
    "total_tokens", "input_file_id", "output_file_id", "error_file_id", "metadata", "created_by", "last_synced",
    "provider", "provider_status",
)
#: Added to each exported row: the estimated cost in dollars at Batch API rates (empty when unknown),
#: the price's source or why there is none, and the trouble flags (``at-risk stalled failing``).
OVERSIGHT_COLUMNS = ("cost_usd", "cost_note", "flags")
TIME_COLUMNS = frozenset(c for c in EXPORT_COLUMNS if c.endswith("_at"))
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _iso(unix: int | None) -> str | None:
    if unix is None:
        return None
    try:
        return dt.datetime.fromtimestamp(unix, tz=dt.UTC).isoformat().replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return None


def _export_values(record: BatchRecord) -> dict:
    values = {}
    for column in EXPORT_COLUMNS:
        value = getattr(record, column)
        if column in TIME_COLUMNS:
            value = _iso(value)
        elif column == "last_synced":
            value = value.isoformat() if value else None
        values[column] = value
    return values


def with_oversight(records: Iterator[BatchRecord]) -> Iterator[dict]:
    """Each row's export values plus its cost and flags. Rows are taken a chunk at a time so the flags
    of a chunk's unfinished batches cost one sample query per project, and memory stays flat."""
    price = PagePricer()
    chunk: list[BatchRecord] = []

    def flush():
        flags = records_oversight(chunk)
        for record in chunk:
            values = _export_values(record)
            cost = price(batch_from_record(record))
            values["cost_usd"] = f"{cost.amount:.6f}" if cost.known else None
            if cost.known:
                note = cost.rates.source + (f"; {cost.rates.note}" if cost.rates.note else "")
            else:
                note = cost.reason
            values["cost_note"] = note
            values["flags"] = flags[record.project, record.batch_id].flag_slugs
            yield values

    for record in records:
        chunk.append(record)
        if len(chunk) >= EXPORT_CHUNK:
            yield from flush()
            chunk = []
    if chunk:
        yield from flush()


def csv_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True)
    text = str(value)
    if isinstance(value, str) and text.startswith(FORMULA_START):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def export_response(records: Iterator[BatchRecord], kind: str, name: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if kind == "csv":
        writer = csv.writer(_Echo())

        columns = EXPORT_COLUMNS + OVERSIGHT_COLUMNS

        def lines():
            yield writer.writerow(columns)
            for values in with_oversight(records):
                values["flags"] = " ".join(values["flags"])
                yield writer.writerow([csv_cell(values[c]) for c in columns])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        def lines():
            for values in with_oversight(records):
                yield json.dumps(values, ensure_ascii=False) + "\n"

        response = StreamingHttpResponse(lines(), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{kind}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
