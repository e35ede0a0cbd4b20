"""Reading a batch's results: output and error lines joined to the input by ``custom_id``.

Output order is not input order (NOTES.md §6.3), and a request's result is in the output file *or* the
error file. Files can be 200 MB, so nothing here holds a file in memory: each file is streamed line by
line from the upstream.

A *finished* batch's files no longer change, so its join is built once and kept in the database
(:class:`~batches.models.ResultsJoin`, one :class:`~batches.models.ResultsJoinRow` per request, keyed by
project, batch and the three file ids): the first results page view of the batch, in whichever worker,
claims the join's unique row and then streams the input, output and error files once each, writing rows
in chunks as it goes; every later page, in any worker and after a restart, is two small queries. A second
worker that asks while the join is being built is not blocked: it computes its page the old way below.

An unfinished batch (or a finished one whose join another worker is building) is read the old way:

1. an *index*: every ``custom_id`` in input order with its outcome (50,000 short strings at most),
   built by streaming the output and error files once and the input file once;
2. the rows of the requested page, found by streaming the output and error files again and keeping only
   the lines whose ``custom_id`` is on that page.

"Retry the failed" streams the input file and keeps the lines whose request did not succeed (outcomes
from the kept join when there is one, else from the result files).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Substr
from django.utils import timezone

from . import selectors
from .models import ResultsJoin, ResultsJoinRow
from .projects import Project
from .index.store import record_result_usage
from .upstream import Batch, UpstreamError, UpstreamNotFound
from .upstream.lines import CANCELLED_CODE, EXPIRED_CODE, iter_jsonl

logger = logging.getLogger(__name__)

PER_PAGE = 50
PREVIEW_CHARS = 2_000
FULL_BODY_CHARS = 100_000
# A claim on a join older than this is taken over: its builder died (a 50,000-line join takes seconds).
BUILD_STALE_SECONDS = 900
JOIN_CHUNK_ROWS = 2000

SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "expired"
NOT_RUN = "no result"
OUTCOMES = (SUCCEEDED, FAILED, EXPIRED, NOT_RUN)


@dataclass(frozen=True)
class ResultRow:
    custom_id: str
    outcome: str
    input_line: int | None = None
    status_code: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    summary: str = ""
    body_preview: str = ""
    body_full: str = ""
    body_truncated: bool = False
    full_truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.outcome == SUCCEEDED


@dataclass(frozen=True)
class ResultIndex:
    """custom_ids in input order (or result order when the input file can not be read) and outcomes."""

    entries: tuple[tuple[str, str, int | None], ...]  # (custom_id, outcome, input line)
    input_available: bool

    def count(self, outcome: str) -> int:
        return sum(1 for _, o, _ in self.entries if o == outcome)


@dataclass(frozen=True)
class ResultsPage:
    rows: tuple[ResultRow, ...]
    page: int
    pages: int
    total: int
    failed_only: bool
    counts: dict[str, int]
    input_available: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def succeeded(self) -> int:
        return self.counts.get(SUCCEEDED, 0)

    @property
    def failed(self) -> int:
        return self.counts.get(FAILED, 0)

    @property
    def expired(self) -> int:
        return self.counts.get(EXPIRED, 0)

    @property
    def not_run(self) -> int:
        return self.counts.get(NOT_RUN, 0)

    @property
    def unsucceeded(self) -> int:
        return self.failed + self.expired + self.not_run


# ---------------------------------------------------------------------------
# Parsing result lines
# ---------------------------------------------------------------------------


def outcome_of(record: dict) -> str:
    """The outcome of one output/error line. HTTP errors have ``error: null`` and the status in
    ``response.status_code`` (NOTES.md §6.3, openai-openapi#302): read the status code, not only error.
    A request a cancel stopped (Anthropic's ``canceled`` line, batches.upstream.lines) never ran."""
    error = record.get("error")
    if isinstance(error, dict) and error.get("code") == EXPIRED_CODE:
        return EXPIRED
    if isinstance(error, dict) and error.get("code") == CANCELLED_CODE:
        return NOT_RUN
    response = record.get("response")
    status = response.get("status_code") if isinstance(response, dict) else None
    if error or not isinstance(status, int) or status >= 400:
        return FAILED
    return SUCCEEDED


def _pretty(body) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False, sort_keys=False)


SUMMARY_CHARS = 200


def _answer_text(body: dict) -> str | None:
    """The model's answer in the shapes of the batch endpoints' responses, if there is one."""
    choices = body.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            return message["content"]  # /v1/chat/completions
        if isinstance(choices[0].get("text"), str):
            return choices[0]["text"]  # /v1/completions
    if isinstance(body.get("output_text"), str):
        return body["output_text"]
    output = body.get("output")  # /v1/responses: output items with output_text parts
    if isinstance(output, list):
        texts = [
            part["text"]
            for item in output
            if isinstance(item, dict) and isinstance(item.get("content"), list)
            for part in item["content"]
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if texts:
            return " ".join(texts)
    data = body.get("data")
    if body.get("object") == "list" and isinstance(data, list):
        return f"{len(data)} result{'s' if len(data) != 1 else ''} ({body.get('model') or 'no model named'})"
    return None


def summarize_body(body) -> str:
    """One line an operator can scan: the answer when there is one, else the compact JSON."""
    if body is None:
        return ""
    text = _answer_text(body) if isinstance(body, dict) and not isinstance(body.get("error"), dict) else None
    if text is None:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _record_row(record: dict, input_line: int | None = None) -> tuple[ResultRow, object]:
    """The row of one output/error line without its body text, and the response body."""
    response = record.get("response") if isinstance(record.get("response"), dict) else {}
    error = record.get("error") if isinstance(record.get("error"), dict) else {}
    body = response.get("body")
    body_error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    error_code = error.get("code") or body_error.get("code") or body_error.get("type")
    error_message = error.get("message") or body_error.get("message")
    status = response.get("status_code")
    row = ResultRow(
        custom_id=str(record.get("custom_id", "")),
        outcome=outcome_of(record),
        input_line=input_line,
        status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
        error_code=str(error_code) if error_code is not None else None,
        error_message=str(error_message) if error_message is not None else None,
        summary=summarize_body(body),
    )
    return row, body


def _with_body_text(row: ResultRow, text: str) -> ResultRow:
    return replace(
        row,
        body_preview=text[:PREVIEW_CHARS],
        body_full=text[:FULL_BODY_CHARS],
        body_truncated=len(text) > PREVIEW_CHARS,
        full_truncated=len(text) > FULL_BODY_CHARS,
    )


def row_from_record(record: dict, input_line: int | None = None) -> ResultRow:
    row, body = _record_row(record, input_line)
    return _with_body_text(row, _pretty(body) if body is not None else "")


# ---------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------


def _outcomes(project: Project, batch: Batch) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for record in selectors.result_records(project, batch):
        custom_id = record.get("custom_id")
        if isinstance(custom_id, str):
            outcomes[custom_id] = outcome_of(record)
    return outcomes


def iter_input_custom_ids(project: Project, file_id: str) -> Iterator[tuple[int, str, str]]:
    """(line number, custom_id, raw line) for each request of an input file, streamed."""
    content = selectors.file_content_open(project, file_id)
    for number, line in enumerate(content.iter_lines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
            yield number, obj["custom_id"], line


def build_index(project: Project, batch: Batch) -> ResultIndex:
    """The join of input, output and error files by custom_id, computed now (not kept)."""
    outcomes = _outcomes(project, batch)
    entries: list[tuple[str, str, int | None]] = []
    input_available = False
    if batch.input_file_id:
        try:
            for number, custom_id, _ in iter_input_custom_ids(project, batch.input_file_id):
                entries.append((custom_id, outcomes.pop(custom_id, NOT_RUN), number))
            input_available = True
        except UpstreamNotFound:
            # The input file expired or was deleted: fall back to result order.
            entries = []
            outcomes = _outcomes(project, batch)
    # Results whose custom_id is not in the input (or every result, without an input file).
    entries.extend((custom_id, outcome, None) for custom_id, outcome in outcomes.items())
    return ResultIndex(entries=tuple(entries), input_available=input_available)


def _rows_for(project: Project, batch: Batch, wanted: dict[str, int | None]) -> dict[str, ResultRow]:
    """Parse only the result lines whose custom_id is in ``wanted`` (custom_id -> input line)."""
    rows: dict[str, ResultRow] = {}
    for record in selectors.result_records(project, batch):
        custom_id = record.get("custom_id")
        if isinstance(custom_id, str) and custom_id in wanted and custom_id not in rows:
            rows[custom_id] = row_from_record(record, wanted[custom_id])
            if len(rows) == len(wanted):
                break
    return rows


def _pages(total: int, page: int, per_page: int) -> tuple[int, int]:
    pages = max((total + per_page - 1) // per_page, 1)
    return min(max(page, 1), pages), pages


def results_page(
    project: Project,
    batch: Batch,
    *,
    page: int = 1,
    failed_only: bool = False,
    per_page: int | None = None,
    custom_id: str = "",
) -> ResultsPage:
    """One page of the joined results, optionally only the requests that did not succeed and/or those
    whose custom_id starts with ``custom_id`` (case-sensitive). Counts are the whole batch's."""
    per_page = per_page or PER_PAGE
    join = joined_results(project, batch)
    if join is not None:
        return _page_from_join(join, page=page, failed_only=failed_only, per_page=per_page, custom_id=custom_id)
    index = build_index(project, batch)
    counts = {outcome: index.count(outcome) for outcome in OUTCOMES}
    entries = [
        e for e in index.entries
        if (not failed_only or e[1] != SUCCEEDED) and (not custom_id or e[0].startswith(custom_id))
    ]
    total = len(entries)
    page, pages = _pages(total, page, per_page)
    window = entries[(page - 1) * per_page : page * per_page]
    wanted = {cid: line for cid, _, line in window}
    found = _rows_for(project, batch, wanted) if wanted else {}
    rows = tuple(
        found.get(cid) or ResultRow(custom_id=cid, outcome=outcome, input_line=line)
        for cid, outcome, line in window
    )
    return ResultsPage(
        rows=rows,
        page=page,
        pages=pages,
        total=total,
        failed_only=failed_only,
        counts=counts,
        input_available=index.input_available,
    )


# ---------------------------------------------------------------------------
# The kept join of a finished batch
# ---------------------------------------------------------------------------


def _join_key(project: Project, batch: Batch) -> dict[str, str]:
    return {
        "project": project.slug,
        "batch_id": batch.id,
        "input_file_id": batch.input_file_id or "",
        "output_file_id": batch.output_file_id or "",
        "error_file_id": batch.error_file_id or "",
    }


def joined_results(project: Project, batch: Batch) -> ResultsJoin | None:
    """The kept join of a finished batch, built now if nobody has built it. None for an unfinished
    batch, or while another worker is building this one. Raises :class:`UpstreamError` if a file can
    not be read (the claim is released, so the next view tries again)."""
    if not batch.is_terminal:
        return None
    key = _join_key(project, batch)
    join = ResultsJoin.objects.filter(**key, state=ResultsJoin.State.READY).first()
    if join is not None:
        return join
    join = _claim(key)
    if join is None:  # another worker is building it (or just finished)
        return ResultsJoin.objects.filter(**key, state=ResultsJoin.State.READY).first()
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


def _iter_file_records(project: Project, file_id: str) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each JSON object line of an upstream file, streamed in chunks."""
    content = selectors.file_content_open(project, file_id)
    try:
        yield from iter_jsonl(content, f"file {file_id}")
    finally:
        content.close()


# How a row's response body is kept (ResultsJoinRow.body_format). Pretty-printing 50,000 bodies is most
# of what a build would cost (json's indenting encoder is pure Python), so bodies are kept as compact JSON
# and pretty-printed for the 50 rows of a page; only a body too long to show whole is kept as its cut text.
BODY_NONE, BODY_JSON, BODY_JSON_Z, BODY_TEXT_Z = 0, 1, 2, 3
COMPRESS_FROM_BYTES = 2048  # smaller bodies are kept as they are (PostgreSQL compresses larger values itself too)

_ROW_COLUMNS = (
    "join_id", "position", "custom_id", "outcome", "unsucceeded", "input_line", "status_code", "error_code",
    "error_message", "summary", "body_format", "body",
)


def _kept_body(body) -> tuple[int, bytes | None]:
    if body is None:
        return BODY_NONE, None
    compact = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if len(compact) > FULL_BODY_CHARS:  # its pretty text is longer still: keep what the page can show
        text = _pretty(body)
        return BODY_TEXT_Z, zlib.compress(text[: FULL_BODY_CHARS + 1].encode("utf-8"), 1)
    data = compact.encode("utf-8")
    if len(data) < COMPRESS_FROM_BYTES:
        return BODY_JSON, data
    return BODY_JSON_Z, zlib.compress(data, 1)


def _body_text(body_format: int, data) -> str:
    if body_format == BODY_NONE or data is None:
        return ""
    if body_format == BODY_JSON:
        return _pretty(json.loads(bytes(data).decode("utf-8")))
    raw = zlib.decompress(data).decode("utf-8")
    return _pretty(json.loads(raw)) if body_format == BODY_JSON_Z else raw


def _insert_rows(rows: list[tuple]) -> None:
    """Plain executemany: Django's bulk_create costs more than the rest of a 50,000-row build."""
    table = connection.ops.quote_name(ResultsJoinRow._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(c) for c in _ROW_COLUMNS)
    marks = ", ".join(["%s"] * len(_ROW_COLUMNS))
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)


def _build(project: Project, batch: Batch, join: ResultsJoin) -> None:
    """Stream the three files once each and write the join's rows in chunks (memory: the input's
    custom_ids and one chunk of rows). Rows are visible to readers only once the join is READY."""
    started = time.monotonic()
    input_ids: list[str] = []
    input_lines: list[int] = []
    positions: dict[str, int] = {}
    input_available = False
    if batch.input_file_id:
        try:
            for number, obj in _iter_file_records(project, batch.input_file_id):
                custom_id = obj.get("custom_id")
                if isinstance(custom_id, str):
                    positions.setdefault(custom_id, len(input_ids))
                    input_ids.append(custom_id)
                    input_lines.append(number)
            input_available = True
        except UpstreamNotFound:
            input_ids, input_lines, positions = [], [], {}  # expired or deleted: result order
    done = bytearray(len(input_ids))
    extra: set[str] = set()
    counts = dict.fromkeys(OUTCOMES, 0)
    pending: list[tuple] = []

    def add(position: int, row: ResultRow, body=None) -> None:
        counts[row.outcome] += 1
        body_format, data = _kept_body(body)
        pending.append((
            join.pk, position, row.custom_id, row.outcome, row.outcome != SUCCEEDED, row.input_line,
            row.status_code, row.error_code, row.error_message, row.summary, body_format, data,
        ))
        if len(pending) >= JOIN_CHUNK_ROWS:
            with transaction.atomic():
                _insert_rows(pending)
            pending.clear()

    next_extra = len(input_ids)
    records = selectors.result_records(project, batch)
    for record in records:
        custom_id = record.get("custom_id")
        if not isinstance(custom_id, str):
            continue
        position = positions.get(custom_id)
        if position is not None:
            if done[position]:
                continue  # a second result for one request: the first one is shown
            done[position] = 1
            add(position, *_record_row(record, input_lines[position]))
        elif custom_id not in extra:
            extra.add(custom_id)
            add(next_extra, *_record_row(record, None))
            next_extra += 1
    if records.usage:
        # The lines' usage is kept for a batch that reports none itself (Anthropic's never does).
        record_result_usage(project.slug, batch.id, records.usage)
    for position, custom_id in enumerate(input_ids):
        if not done[position]:
            add(position, ResultRow(custom_id=custom_id, outcome=NOT_RUN, input_line=input_lines[position]))
    if pending:
        with transaction.atomic():
            _insert_rows(pending)
    seconds = time.monotonic() - started
    updated = ResultsJoin.objects.filter(pk=join.pk, builder=join.builder).update(
        state=ResultsJoin.State.READY,
        built_at=timezone.now(),
        build_seconds=round(seconds, 3),
        input_available=input_available,
        total=next_extra,
        succeeded=counts[SUCCEEDED],
        failed=counts[FAILED],
        expired=counts[EXPIRED],
        not_run=counts[NOT_RUN],
    )
    if not updated:
        raise RuntimeError("the results join was taken over while it was being built")
    join.refresh_from_db()
    logger.info("results join of %s/%s built: %d rows in %.2f s", project.slug, batch.id, next_extra, seconds)


def _row_from_join(row: ResultsJoinRow) -> ResultRow:
    kept = ResultRow(
        custom_id=row.custom_id,
        outcome=row.outcome,
        input_line=row.input_line,
        status_code=row.status_code,
        error_code=row.error_code,
        error_message=row.error_message,
        summary=row.summary,
    )
    if row.body_format == BODY_NONE:
        return kept
    return _with_body_text(kept, _body_text(row.body_format, row.body))


def _page_from_join(join: ResultsJoin, *, page: int, failed_only: bool, per_page: int, custom_id: str) -> ResultsPage:
    counts = {SUCCEEDED: join.succeeded, FAILED: join.failed, EXPIRED: join.expired, NOT_RUN: join.not_run}
    rows = ResultsJoinRow.objects.filter(join=join)
    if failed_only:
        rows = rows.filter(unsucceeded=True)
    if custom_id:
        # An exact comparison of the prefix: LIKE is case-insensitive on SQLite.
        rows = rows.annotate(cid_prefix=Substr("custom_id", 1, len(custom_id))).filter(cid_prefix=custom_id)
        total = rows.count()
    else:
        total = join.total - join.succeeded if failed_only else join.total
    page, pages = _pages(total, page, per_page)
    start = (page - 1) * per_page
    if failed_only or custom_id:
        window = rows.order_by("position")[start : start + per_page]
    else:  # positions run 0..total-1: a range on the unique (join, position) index
        window = rows.filter(position__gte=start, position__lt=start + per_page).order_by("position")
    return ResultsPage(
        rows=tuple(_row_from_join(r) for r in window),
        page=page,
        pages=pages,
        total=total,
        failed_only=failed_only,
        counts=counts,
        input_available=join.input_available,
    )


def _kept_outcomes(project: Project, batch: Batch) -> dict[str, str] | None:
    """custom_id -> outcome from the kept join, if this finished batch has one ready."""
    if not batch.is_terminal:
        return None
    join = ResultsJoin.objects.filter(**_join_key(project, batch), state=ResultsJoin.State.READY).first()
    if join is None:
        return None
    outcomes: dict[str, str] = {}
    for custom_id, outcome in ResultsJoinRow.objects.filter(join=join).order_by("position").values_list(
        "custom_id", "outcome"
    ):
        outcomes.setdefault(custom_id, outcome)
    return outcomes


# ---------------------------------------------------------------------------
# Retry the failed
# ---------------------------------------------------------------------------


def iter_retry_lines(project: Project, batch: Batch) -> Iterator[bytes]:
    """The input lines (with "\\n") whose request failed, expired or never ran, in input order.

    Raises :class:`UpstreamError` before yielding anything if a file can not be read."""
    if not batch.input_file_id:
        raise UpstreamNotFound("This batch has no input file to retry from.")
    outcomes = _kept_outcomes(project, batch)
    if outcomes is None:
        outcomes = _outcomes(project, batch)
    content = iter_input_custom_ids(project, batch.input_file_id)
    first = next(content, None)  # surface an unreadable input file before the response starts

    def generate() -> Iterator[bytes]:
        if first is not None:
            yield from _keep(first)
        for item in content:
            yield from _keep(item)

    def _keep(item: tuple[int, str, str]) -> Iterable[bytes]:
        _, custom_id, line = item
        if outcomes.get(custom_id, NOT_RUN) != SUCCEEDED:
            yield line.encode("utf-8") + b"\n"

    return generate()


def write_retry_file(project: Project, batch: Batch) -> tuple[tempfile._TemporaryFileWrapper, int]:
    """The retry input file on disk (caller closes it) and its number of requests."""
    handle = tempfile.NamedTemporaryFile(prefix="retry-", suffix=".jsonl")
    count = 0
    try:
        for line in iter_retry_lines(project, batch):
            handle.write(line)
            count += 1
    except (UpstreamError, OSError):
        handle.close()
        raise
    handle.flush()
    handle.seek(0)
    return handle, count
