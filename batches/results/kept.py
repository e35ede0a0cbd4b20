"""The kept join of a finished batch: built once, then read from the database by every worker.

A finished batch's files no longer change, so its join (``join.py``) is written once into
:class:`~batches.models.ResultsJoin` (one :class:`~batches.models.ResultsJoinRow` per request, keyed by
project, batch and the three file ids). Whoever asks first (a results page view, in whichever worker)
claims the join's unique row and then streams the three files once each, writing rows in chunks as it
goes; every later page, in any worker and after a restart, is two small queries. A second worker that
asks while the join is being built is not blocked: it gets None and computes its page from the files.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..index.store import record_result_usage
from ..models import ResultsJoin, ResultsJoinRow
from ..projects import Project
from ..upstream import Batch
from .join import FileJoin
from .records import EXPIRED, FAILED, NOT_RUN, OUTCOMES, SUCCEEDED, ResultRow, row_and_body, stored_body

logger = logging.getLogger(__name__)

# A claim on a join older than this is taken over: its builder died (a 50,000-line join takes seconds).
BUILD_STALE_SECONDS = 900
CHUNK_ROWS = 2000

_ROW_COLUMNS = (
    "join_id", "position", "custom_id", "outcome", "unsucceeded", "input_line", "status_code", "error_code",
    "error_message", "summary", "body_format", "body",
)


def join_key(project: Project, batch: Batch) -> dict[str, str]:
    return {
        "project": project.slug,
        "batch_id": batch.id,
        "input_file_id": batch.input_file_id or "",
        "output_file_id": batch.output_file_id or "",
        "error_file_id": batch.error_file_id or "",
    }


def ready_join(project: Project, batch: Batch) -> ResultsJoin | None:
    """The kept join of this batch if it is built, without building it."""
    if not batch.is_terminal:
        return None
    return ResultsJoin.objects.filter(**join_key(project, batch), state=ResultsJoin.State.READY).first()


def kept_join(project: Project, batch: Batch) -> ResultsJoin | None:
    """The kept join of a finished batch, built now if nobody has built it. None for an unfinished
    batch, or while another worker is building this one. Raises :class:`UpstreamError` if a file can
    not be read (the claim is released, so the next caller tries again)."""
    if not batch.is_terminal:
        return None
    join = ready_join(project, batch)
    if join is not None:
        return join
    key = join_key(project, batch)
    join = _claim(key)
    if join is None:  # another worker is building it (or just finished)
        return ready_join(project, batch)
    try:
        _build(project, batch, join)
    except BaseException:
        ResultsJoin.objects.filter(pk=join.pk, builder=join.builder).delete()
        raise
    return join


def _claim(key: dict[str, str]) -> ResultsJoin | None:
    """Claim the right to build the join: the unique row is created first (one worker wins), and a
    claim whose builder stopped long ago is taken over. None when someone else holds it."""
    me, now = uuid.uuid4().hex, timezone.now()
    try:
        with transaction.atomic():
            return ResultsJoin.objects.create(**key, builder=me, claimed_at=now)
    except IntegrityError:
        pass
    taken = ResultsJoin.objects.filter(
        **key, state=ResultsJoin.State.BUILDING, claimed_at__lt=now - timedelta(seconds=BUILD_STALE_SECONDS)
    ).update(builder=me, claimed_at=now)
    if not taken:
        return None
    join = ResultsJoin.objects.get(**key, builder=me)
    ResultsJoinRow.objects.filter(join=join).delete()  # what the dead builder left
    logger.warning("took over the results join of %s/%s from a stopped builder", key["project"], key["batch_id"])
    return join


def _insert_rows(rows: list[tuple]) -> None:
    """Plain executemany: Django's bulk_create costs more than the rest of a 50,000-row build."""
    table = connection.ops.quote_name(ResultsJoinRow._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _ROW_COLUMNS)
    marks = ", ".join(["%s"] * len(_ROW_COLUMNS))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _build(project: Project, batch: Batch, join: ResultsJoin) -> None:
    """Write the join's rows in chunks (memory: the input's custom_ids and one chunk of rows). Rows are
    visible to readers only once the join is READY."""
    started = time.monotonic()
    files = FileJoin(project, batch)
    counts = dict.fromkeys(OUTCOMES, 0)
    pending: list[tuple] = []
    for joined in files:
        if joined.record is None:
            row, body = ResultRow(custom_id=joined.custom_id, outcome=NOT_RUN, input_line=joined.input_line), None
        else:
            row, body = row_and_body(joined.record, joined.input_line)
        counts[row.outcome] += 1
        body_format, data = stored_body(body)
        pending.append((
            join.pk, joined.position, row.custom_id, row.outcome, row.outcome != SUCCEEDED, row.input_line,
            row.status_code, row.error_code, row.error_message, row.summary, body_format, data,
        ))
        if len(pending) >= CHUNK_ROWS:
            _insert_rows(pending)
            pending.clear()
    if pending:
        _insert_rows(pending)
    seconds = time.monotonic() - started
    updated = ResultsJoin.objects.filter(pk=join.pk, builder=join.builder).update(
        state=ResultsJoin.State.READY,
        built_at=timezone.now(),
        build_seconds=round(seconds, 3),
        input_available=files.input_available,
        total=files.size,
        succeeded=counts[SUCCEEDED],
        failed=counts[FAILED],
        expired=counts[EXPIRED],
        not_run=counts[NOT_RUN],
    )
    if not updated:
        raise RuntimeError("the results join was taken over while it was being built")
    if files.usage:
        # The lines' usage is kept for a batch that reports none itself (Anthropic's never does).
        record_result_usage(project.slug, batch.id, files.usage)
    join.refresh_from_db()
    logger.info("results join of %s/%s built: %d rows in %.2f s", project.slug, batch.id, files.size, seconds)


def kept_outcomes(join: ResultsJoin) -> dict[str, str]:
    """custom_id -> outcome from a kept join (a custom_id the input repeats: its first request's)."""
    outcomes: dict[str, str] = {}
    rows = ResultsJoinRow.objects.filter(join=join).order_by("position").values_list("custom_id", "outcome")
    for custom_id, outcome in rows:
        outcomes.setdefault(custom_id, outcome)
    return outcomes
