"""A page of a batch's results: from the kept join when the batch is finished, else from the files.

Filters: only the requests that did not succeed, and/or those whose custom_id starts with a given
prefix (case-sensitive). The counts are always the whole batch's.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models.functions import Substr

from ..models import ResultsJoin, ResultsJoinRow
from ..projects import Project
from ..querystring import QueryForm, TextField
from ..upstream import Batch
from .join import FileJoin
from .kept import kept_join
from .records import (
    BODY_NONE,
    EXPIRED,
    FAILED,
    NOT_RUN,
    OUTCOMES,
    SUCCEEDED,
    ResultRow,
    outcome_of,
    shown_row,
    stored_body_text,
    with_body_text,
)

PER_PAGE = 50
CUSTOM_ID_MAX = 200


class ResultsQueryForm(QueryForm):
    """The results page's query string: ``filter`` (``failed``: only the requests that did not
    succeed), ``custom_id`` (a prefix) and ``page``. A bad value is a sentence and its default."""

    filter = TextField()
    custom_id = TextField()
    page = TextField()

    def clean_filter(self) -> str:
        raw = self.cleaned_data["filter"]
        if raw not in ("", "failed"):
            self.problem(f"“{raw[:40]}” is not a filter of results (only “failed” is); showing every request.")
            return ""
        return raw

    def clean_custom_id(self) -> str:
        raw = self.cleaned_data["custom_id"]
        if len(raw) > CUSTOM_ID_MAX:
            self.problem(f"A custom_id search is at most {CUSTOM_ID_MAX} characters; showing every custom_id.")
            return ""
        return raw

    def clean_page(self) -> int:
        raw = self.cleaned_data["page"]
        if not raw:
            return 1
        if not raw.isdigit() or int(raw) < 1:
            self.problem(f"“{raw[:40]}” is not a page number; showing the first page.")
            return 1
        return int(raw)


@dataclass(frozen=True)
class ResultsPage:
    rows: tuple[ResultRow, ...]
    page: int
    pages: int
    total: int
    failed_only: bool
    input_available: bool
    # The whole batch's requests by outcome, whatever the filters.
    succeeded: int
    failed: int
    expired: int
    not_run: int
    #: A preview while the kept join is being prepared (``prepare.py``): counts and the first results only.
    preparing: bool = False

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def unsucceeded(self) -> int:
        return self.failed + self.expired + self.not_run

    @property
    def counts(self) -> dict[str, int]:
        return {SUCCEEDED: self.succeeded, FAILED: self.failed, EXPIRED: self.expired, NOT_RUN: self.not_run}


def _by_outcome(counts: dict[str, int]) -> dict[str, int]:
    """:class:`ResultsPage`'s count fields from counts keyed by outcome."""
    return {"succeeded": counts[SUCCEEDED], "failed": counts[FAILED], "expired": counts[EXPIRED], "not_run": counts[NOT_RUN]}


def _page_and_pages(total: int, page: int, per_page: int) -> tuple[int, int]:
    """The page asked for, kept within 1..pages, and the number of pages (at least 1)."""
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
    """One page of the joined results (``per_page`` rows, :data:`PER_PAGE` unless given). Raises
    :class:`UpstreamError` when a file can not be read."""
    per_page = per_page or PER_PAGE
    join = kept_join(project, batch)
    if join is None:
        return page_from_files(project, batch, page=page, failed_only=failed_only, per_page=per_page, custom_id=custom_id)
    return page_from_kept(join, page=page, failed_only=failed_only, per_page=per_page, custom_id=custom_id)


def page_from_kept(join: ResultsJoin, *, page: int, failed_only: bool, per_page: int, custom_id: str) -> ResultsPage:
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
    page, pages = _page_and_pages(total, page, per_page)
    start = (page - 1) * per_page
    if failed_only or custom_id:
        window = rows.order_by("position")[start : start + per_page]
    else:  # positions run 0..total-1: a range on the unique (join, position) index
        window = rows.filter(position__gte=start, position__lt=start + per_page).order_by("position")
    return ResultsPage(
        rows=tuple(_kept_row(r) for r in window),
        page=page,
        pages=pages,
        total=total,
        failed_only=failed_only,
        input_available=join.input_available,
        **_by_outcome(counts),
    )


def _kept_row(row: ResultsJoinRow) -> ResultRow:
    shown = ResultRow(
        custom_id=row.custom_id,
        outcome=row.outcome,
        input_line=row.input_line,
        status_code=row.status_code,
        error_code=row.error_code,
        error_message=row.error_message,
        summary=row.summary,
    )
    if row.body_format == BODY_NONE:
        return shown
    return with_body_text(shown, stored_body_text(row.body_format, row.body))


def page_from_files(
    project: Project, batch: Batch, *, page: int, failed_only: bool, per_page: int, custom_id: str
) -> ResultsPage:
    """The page computed from the files for this view alone (an unfinished batch, or one whose kept
    join another worker is building): one pass of the join for every request's outcome (a short
    string each), and a second for the result lines of the page's requests, when it has any."""
    files = FileJoin(project, batch)
    outcomes: dict[int, tuple[str, str, int | None]] = {}  # position -> (custom_id, outcome, input line)
    for joined in files:
        outcome = NOT_RUN if joined.record is None else outcome_of(joined.record)
        outcomes[joined.position] = (joined.custom_id, outcome, joined.input_line)
    entries = [outcomes[position] for position in range(files.size)]
    counts = dict.fromkeys(OUTCOMES, 0)
    for _, outcome, _ in entries:
        counts[outcome] += 1
    chosen = [
        (position, entry) for position, entry in enumerate(entries)
        if (not failed_only or entry[1] != SUCCEEDED) and entry[0].startswith(custom_id)
    ]
    page, pages = _page_and_pages(len(chosen), page, per_page)
    window = chosen[(page - 1) * per_page : page * per_page]
    answered = {position for position, (_, outcome, _) in window if outcome != NOT_RUN}
    found: dict[int, ResultRow] = {}
    if answered:
        for joined in FileJoin(project, batch):
            if joined.position in answered and joined.record is not None:
                found[joined.position] = shown_row(joined.record, joined.input_line)
                if len(found) == len(answered):
                    break
    rows = tuple(
        found.get(position) or ResultRow(custom_id=cid, outcome=outcome, input_line=line)
        for position, (cid, outcome, line) in window
    )
    return ResultsPage(
        rows=rows,
        page=page,
        pages=pages,
        total=len(chosen),
        failed_only=failed_only,
        input_available=files.input_available,
        **_by_outcome(counts),
    )
