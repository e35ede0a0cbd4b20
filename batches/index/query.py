"""Building index queries: narrowing by filters, the ``q`` substring search, keyset pages.

Everything here is plain ORM over :class:`~batches.models.BatchRecord` and works the same on SQLite
and PostgreSQL. Views never call it: ``index/selectors.py`` does (every read of the index).

NULL sort keys (an ``expires_at`` the API left out) sort lowest, as SQLite does natively: first in
ascending sorts, last in descending ones. Each page is read as at most two index-ordered segments
(keys present, keys missing), so no query needs a ``NULLS FIRST/LAST`` sort the index cannot serve.
"""

from __future__ import annotations

import datetime as dt
import heapq
from dataclasses import replace

from django.db import connection
from django.db.models import F, Lookup, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from ..models import BatchRecord
from ..vocabulary import SORTS, TERMINAL_STATUSES
from .filters import Cursor, Filters
from .flags import failing_q, flag_q


def _day_start(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time.min, tzinfo=dt.UTC).timestamp())


def filtered(base: QuerySet, filters: Filters, *, with_status: bool = True) -> QuerySet:
    """``base`` narrowed by every filter (the status pick left out when ``with_status`` is False)."""
    qs = base
    if with_status and filters.statuses:
        qs = qs.filter(status__in=filters.statuses)
    if filters.providers:
        qs = qs.filter(provider__in=filters.providers)
    if filters.endpoint:
        qs = qs.filter(endpoint=filters.endpoint)
    if filters.model:
        qs = qs.filter(model=filters.model)
    if filters.created_after:
        qs = qs.filter(created_at__gte=_day_start(filters.created_after))
    if filters.created_before:
        # Inclusive: everything before the start of the next day (UTC).
        qs = qs.filter(created_at__lt=_day_start(filters.created_before + dt.timedelta(days=1)))
    if filters.q:
        qs = qs.filter(_contains_q(filters.q))
    for key, value in filters.meta:
        # KeyTextTransform takes the key as one path element (no "__" splitting): JSON_EXTRACT on
        # SQLite, ->> on PostgreSQL; the key and value are bound parameters.
        qs = qs.filter(Exact(KeyTextTransform(key, "metadata"), Value(value)))
    if filters.flag:
        qs = qs.filter(_flag_q(filters.flag))
    return qs


def _flag_q(flag: str) -> Q:
    """Batches carrying a trouble flag. "failing" is SQL; "at-risk" and "stalled" come from the
    request-count samples of unfinished batches, which are few (the completion window is 24 h)."""
    if flag == "failing":
        return failing_q()
    projects = BatchRecord.objects.exclude(status__in=TERMINAL_STATUSES).values_list("project", flat=True).distinct()
    return flag_q(flag, list(projects))


class _Glob(Lookup):
    """``lhs GLOB rhs`` (SQLite): a case-sensitive match that skips LIKE's case folding and ESCAPE
    handling, measurably faster over 200,000 rows. Used only through :func:`_contains_q`."""

    lookup_name = "glob"

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} GLOB {rhs}", [*lhs_params, *rhs_params]


_GLOB_SPECIAL = str.maketrans({"*": "[*]", "?": "[?]", "[": "[[]"})


def glob_contains(text: str) -> str:
    """A GLOB pattern matching any string that contains ``text`` literally (``]`` is literal outside a
    bracket set, so only ``*``, ``?`` and ``[`` need a set of their own)."""
    return f"*{text.translate(_GLOB_SPECIAL)}*"


def _contains_q(q: str) -> Q | Lookup:
    """``search_text`` contains ``q``. search_text is lower-cased at write time (index/store.py), so
    the lower-cased text matches case-insensitively with a case-sensitive operator: GLOB on SQLite,
    LIKE on PostgreSQL (served by the pg_trgm index of migration 0009 when the extension exists)."""
    needle = q.lower()
    if connection.vendor == "sqlite":
        return _Glob(F("search_text"), Value(glob_contains(needle)))
    return Q(search_text__contains=needle)


# -- keyset pages ------------------------------------------------------------------------------------


def _tiebreak(filters: Filters) -> tuple[str, ...]:
    return ("batch_id", "project") if filters.cross_project else ("batch_id",)


def _after_q(fields: tuple[str, ...], values: tuple, desc: bool) -> Q:
    """Rows strictly after ``values`` in the lexicographic order of ``fields``. The leading
    ``field <= value`` (``>=``) is implied by the rest but lets the database seek the index."""
    op = "lt" if desc else "gt"
    condition: Q | None = None
    for name, value in reversed(list(zip(fields, values))):
        strict = Q(**{f"{name}__{op}": value})
        condition = strict if condition is None else strict | (Q(**{name: value}) & condition)
    return Q(**{f"{fields[0]}__{op}e": values[0]}) & condition


def _cursor_of(record: BatchRecord, column: str, filters: Filters) -> Cursor:
    return Cursor(
        key=getattr(record, column), batch_id=record.batch_id,
        project=record.project if filters.cross_project else "",
    )


def _segment(qs: QuerySet, filters: Filters, column: str, desc: bool, null: bool, n: int) -> list[BatchRecord]:
    tiebreak = _tiebreak(filters)
    qs = qs.filter(**{f"{column}__isnull": null})
    cursor = filters.after
    if cursor is not None and (cursor.key is None) == null:
        values = (cursor.batch_id, cursor.project)[: len(tiebreak)]
        if null:
            qs = qs.filter(_after_q(tiebreak, values, desc))
        else:
            qs = qs.filter(_after_q((column, *tiebreak), (cursor.key, *values), desc))
    sign = "-" if desc else ""
    order = [f"{sign}{name}" for name in (tiebreak if null else (column, *tiebreak))]
    return _ordered(qs, order, filters, n)


def _ordered(qs: QuerySet, order: list[str], filters: Filters, n: int) -> list[BatchRecord]:
    """The first ``n`` rows of ``qs`` in ``order``. With several statuses picked, one query per status
    (each walks the (project, status, key) index in order) merged here: an ``IN`` list would make the
    database sort every matching row to return twenty."""
    if filters.cross_project or len(filters.statuses) < 2:
        return list(qs.order_by(*order)[:n])
    parts = [list(qs.filter(status=status).order_by(*order)[:n]) for status in filters.statuses]

    def sort_key(record: BatchRecord):
        return tuple(_Reversible(getattr(record, name.lstrip("-")), name.startswith("-")) for name in order)

    return list(heapq.merge(*parts, key=sort_key))[:n]


class _Reversible:
    """A sort key component that can be compared in reverse (for merging descending runs)."""

    __slots__ = ("value", "reverse")

    def __init__(self, value, reverse: bool) -> None:
        self.value, self.reverse = value, reverse

    def __eq__(self, other) -> bool:
        return self.value == other.value

    def __lt__(self, other) -> bool:
        return self.value > other.value if self.reverse else self.value < other.value


def keyset_page(qs: QuerySet, filters: Filters) -> tuple[list[BatchRecord], Cursor | None]:
    """One page of ``qs`` (already filtered) after ``filters.after``, and the cursor of the next page."""
    column, desc = SORTS[filters.sort]
    segments = (False, True) if desc else (True, False)  # is the key NULL in this segment?
    start = 0
    if filters.after is not None:
        start = segments.index(filters.after.key is None)
    rows: list[BatchRecord] = []
    for null in segments[start:]:
        need = filters.limit + 1 - len(rows)
        segment_filters = filters if null == segments[start] else replace(filters, after=None)
        rows.extend(_segment(qs, segment_filters, column, desc, null, need))
        if len(rows) > filters.limit:
            break
    if len(rows) > filters.limit:
        rows = rows[: filters.limit]
        return rows, _cursor_of(rows[-1], column, filters)
    return rows, None


#: Above this many ``q`` matches the search stays a LIKE inside each query (slower, still correct).
Q_CANDIDATES = 2000


def q_candidates(base: QuerySet, filters: Filters) -> tuple[QuerySet, Filters]:
    """Run the ``q`` substring scan once, over the narrow (project, search_text) index
    (migration 0005) rather than inside each of the count and page queries, where the planner would
    rather walk the sort index and read every row. A selective ``q`` (an id, a run name) matches a
    handful of rows, which the page and counts then fetch by primary key."""
    pks = list(base.filter(_contains_q(filters.q)).values_list("pk", flat=True)[: Q_CANDIDATES + 1])
    if len(pks) > Q_CANDIDATES:
        return base, filters
    return base.filter(pk__in=pks), replace(filters, q="", _q_applied=True)
