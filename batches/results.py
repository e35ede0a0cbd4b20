"""Reading a batch's results: output and error lines joined to the input by ``custom_id``.

Output order is not input order (NOTES.md §6.3), and a request's result is in the output file *or* the
error file. Files can be 200 MB, so nothing here holds a file in memory: each file is streamed line by
line from the upstream, and only small things are kept:

1. an *index*: every ``custom_id`` in input order with its outcome (50,000 short strings at most),
   built by streaming the output and error files once and the input file once; cached for finished
   batches, whose files no longer change;
2. the rows of the requested page, found by streaming the output and error files again and keeping only
   the lines whose ``custom_id`` is on that page.

"Retry the failed" streams the input file and keeps the lines whose request did not succeed.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from django.core.cache import cache

from . import selectors
from .projects import Project
from .upstream import Batch, UpstreamError, UpstreamNotFound

logger = logging.getLogger(__name__)

PER_PAGE = 50
PREVIEW_CHARS = 2_000
FULL_BODY_CHARS = 100_000
INDEX_CACHE_SECONDS = 600

SUCCEEDED = "succeeded"
FAILED = "failed"
EXPIRED = "expired"
NOT_RUN = "no result"
OUTCOME_LABELS = {SUCCEEDED: "succeeded", FAILED: "failed", EXPIRED: "expired", NOT_RUN: "no result"}


@dataclass(frozen=True)
class ResultRow:
    custom_id: str
    outcome: str
    input_line: int | None = None
    status_code: int | None = None
    request_id: str | None = None
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


def _iter_json_lines(project: Project, file_id: str | None) -> Iterator[dict]:
    """Every JSON object line of an upstream file, streamed. Unreadable lines are logged and skipped."""
    if not file_id:
        return
    content = selectors.file_content_open(project, file_id)
    for number, line in enumerate(content.iter_lines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            logger.warning("file %s line %d is not JSON; skipped", file_id, number)
            continue
        if isinstance(obj, dict):
            yield obj


def outcome_of(record: dict) -> str:
    """The outcome of one output/error line. HTTP errors have ``error: null`` and the status in
    ``response.status_code`` (NOTES.md §6.3, openai-openapi#302): read the status code, not only error."""
    error = record.get("error")
    if isinstance(error, dict) and error.get("code") == "batch_expired":
        return EXPIRED
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


def row_from_record(record: dict, input_line: int | None = None) -> ResultRow:
    response = record.get("response") if isinstance(record.get("response"), dict) else {}
    error = record.get("error") if isinstance(record.get("error"), dict) else {}
    body = response.get("body")
    body_error = body.get("error") if isinstance(body, dict) and isinstance(body.get("error"), dict) else {}
    error_code = error.get("code") or body_error.get("code") or body_error.get("type")
    error_message = error.get("message") or body_error.get("message")
    status = response.get("status_code")
    text = _pretty(body) if body is not None else ""
    return ResultRow(
        custom_id=str(record.get("custom_id", "")),
        outcome=outcome_of(record),
        input_line=input_line,
        status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
        request_id=response.get("request_id") if isinstance(response.get("request_id"), str) else None,
        error_code=str(error_code) if error_code is not None else None,
        error_message=str(error_message) if error_message is not None else None,
        summary=summarize_body(body),
        body_preview=text[:PREVIEW_CHARS],
        body_full=text[:FULL_BODY_CHARS],
        body_truncated=len(text) > PREVIEW_CHARS,
        full_truncated=len(text) > FULL_BODY_CHARS,
    )


# ---------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------


def _outcomes(project: Project, batch: Batch) -> dict[str, str]:
    outcomes: dict[str, str] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        for record in _iter_json_lines(project, file_id):
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


def _index_cache_key(project: Project, batch: Batch) -> str:
    return f"results-index:{project.slug}:{batch.id}:{batch.input_file_id}:{batch.output_file_id}:{batch.error_file_id}"


def build_index(project: Project, batch: Batch) -> ResultIndex:
    """The join of input, output and error files by custom_id. Cached only for finished batches."""
    key = _index_cache_key(project, batch)
    if batch.is_terminal:
        cached = cache.get(key)
        if cached is not None:
            return cached
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
    index = ResultIndex(entries=tuple(entries), input_available=input_available)
    if batch.is_terminal:
        cache.set(key, index, INDEX_CACHE_SECONDS)
    return index


def _rows_for(project: Project, batch: Batch, wanted: dict[str, int | None]) -> dict[str, ResultRow]:
    """Parse only the result lines whose custom_id is in ``wanted`` (custom_id -> input line)."""
    rows: dict[str, ResultRow] = {}
    for file_id in (batch.output_file_id, batch.error_file_id):
        if len(rows) == len(wanted):
            break
        for record in _iter_json_lines(project, file_id):
            custom_id = record.get("custom_id")
            if isinstance(custom_id, str) and custom_id in wanted and custom_id not in rows:
                rows[custom_id] = row_from_record(record, wanted[custom_id])
    return rows


def results_page(
    project: Project,
    batch: Batch,
    *,
    page: int = 1,
    failed_only: bool = False,
    custom_id: str = "",
    per_page: int | None = None,
) -> ResultsPage:
    """One page of rows; ``custom_id`` keeps the requests whose custom_id contains it."""
    per_page = per_page or PER_PAGE
    index = build_index(project, batch)
    counts = {outcome: index.count(outcome) for outcome in OUTCOME_LABELS}
    entries = [
        e for e in index.entries if (not failed_only or e[1] != SUCCEEDED) and (not custom_id or custom_id in e[0])
    ]
    total = len(entries)
    pages = max((total + per_page - 1) // per_page, 1)
    page = min(max(page, 1), pages)
    window = entries[(page - 1) * per_page : page * per_page]
    wanted = {custom_id: line for custom_id, _, line in window}
    found = _rows_for(project, batch, wanted)
    rows = tuple(
        found.get(custom_id) or ResultRow(custom_id=custom_id, outcome=outcome, input_line=line)
        for custom_id, outcome, line in window
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
# Retry the failed
# ---------------------------------------------------------------------------


def iter_retry_lines(project: Project, batch: Batch) -> Iterator[bytes]:
    """The input lines (with "\\n") whose request failed, expired or never ran, in input order.

    Raises :class:`UpstreamError` before yielding anything if a file can not be read."""
    if not batch.input_file_id:
        raise UpstreamNotFound("This batch has no input file to retry from.")
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
