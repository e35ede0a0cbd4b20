"""Reading the index for people: filters from a query string, keyset pages and per-status counts.

Everything here is plain ORM over :class:`~batches.models.BatchRecord` and works the same on SQLite
and PostgreSQL. Views call :func:`parse_filters` (never raises: a bad value becomes a sentence in
``problems`` and is ignored), then :func:`filtered`, :func:`keyset_page` and :func:`status_counts`.

Pages are keyset pages, never OFFSET: the ``after`` cursor is the last row's sort key and batch id,
written readably as ``<key>,<batch id>`` (``null`` for a missing key; ``/search/`` adds ``,<project>``
because it spans projects). A batch id never contains a comma (``ID_PATTERN``), so the split is exact.

NULL sort keys (an ``expires_at`` the API left out) sort lowest, as SQLite does natively: first in
ascending sorts, last in descending ones. Each page is read as at most two index-ordered segments
(keys present, keys missing), so no query needs a ``NULLS FIRST/LAST`` sort the index cannot serve.
"""

from __future__ import annotations

import datetime as dt
import heapq
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlencode

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, Lookup, Q, QuerySet, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.lookups import Exact

from ..models import BatchRecord, SyncState
from ..upstream import ID_PATTERN, PROVIDER_NAMES
from ..vocabulary import (
    DEFAULT_LIMIT,
    DEFAULT_SORT,
    FLAGS,
    KNOWN_STATUSES,
    MAX_LIMIT,
    SLUG_PATTERN,
    SORT_LABELS,
    SORTS,
    STATUS_ORDER,
    TERMINAL_STATUSES,
)

#: The parameters that make the list a filtered view served from the index.
FILTER_PARAMS = ("status", "endpoint", "model", "created_after", "created_before", "q", "meta", "flag", "sort", "provider")
STATUS_FORM = re.compile(r"[a-z_]{1,32}")
MAX_Q = 200
MAX_META = 5
# Metadata: up to 16 pairs, keys up to 64 characters, values up to 512 (NOTES.md §2, Metadata).
MAX_META_KEY = 64
MAX_META_VALUE = 512
#: Date filters outside these are a problem (as insights' ranges are, oversight/insights.py).
MIN_DATE = dt.date(2000, 1, 1)
MAX_DATE = dt.date(2999, 12, 31)


@dataclass(frozen=True)
class Cursor:
    key: int | None
    batch_id: str
    project: str = ""

    def encode(self) -> str:
        text = f"{'null' if self.key is None else self.key},{self.batch_id}"
        return f"{text},{self.project}" if self.project else text

    @classmethod
    def decode(cls, text: str, *, cross_project: bool) -> Cursor:
        parts = text.split(",")
        if len(parts) != (3 if cross_project else 2):
            raise ValueError(text)
        key_text, batch_id = parts[0], parts[1]
        key = None if key_text == "null" else int(key_text)
        if not ID_PATTERN.fullmatch(batch_id):
            raise ValueError(text)
        project = parts[2] if cross_project else ""
        if cross_project and not SLUG_PATTERN.fullmatch(project):
            raise ValueError(text)
        return cls(key=key, batch_id=batch_id, project=project)


@dataclass(frozen=True)
class Filters:
    statuses: tuple[str, ...] = ()
    endpoint: str = ""
    model: str = ""
    created_after: dt.date | None = None
    created_before: dt.date | None = None
    q: str = ""
    meta: tuple[tuple[str, str], ...] = ()
    flag: str = ""
    sort: str = DEFAULT_SORT
    after: Cursor | None = None
    limit: int = DEFAULT_LIMIT
    #: Providers picked ("openai", "azure", "anthropic"; repeatable): which APIs the batches live in.
    providers: tuple[str, ...] = ()
    cross_project: bool = field(default=False, compare=False)
    #: Set when ``q`` was already turned into a set of candidate rows (see ``_q_candidates``).
    _q_applied: bool = field(default=False, compare=False, repr=False)

    @property
    def active(self) -> bool:
        """Is anything narrowing or reordering the list (what makes it an index view)?"""
        return bool(
            self.statuses or self.endpoint or self.model or self.created_after or self.created_before
            or self.q or self.meta or self.flag or self.sort != DEFAULT_SORT or self.providers
        )

    @property
    def narrowing(self) -> bool:
        """Does anything besides the status pick rows (so the filter's counts differ from the project's)?"""
        return bool(
            self.endpoint or self.model or self.created_after or self.created_before or self.q or self.meta
            or self.flag or self._q_applied or self.providers
        )

    def params(self, *, with_cursor: bool = True, with_limit: bool = True) -> list[tuple[str, str]]:
        """The canonical query string of this view, as (name, value) pairs, defaults left out."""
        out: list[tuple[str, str]] = [("status", status) for status in self.statuses]
        out.extend(("provider", provider) for provider in self.providers)
        for name in ("endpoint", "model", "q"):
            if getattr(self, name):
                out.append((name, getattr(self, name)))
        if self.created_after:
            out.append(("created_after", self.created_after.isoformat()))
        if self.created_before:
            out.append(("created_before", self.created_before.isoformat()))
        out.extend(("meta", f"{key}:{value}") for key, value in self.meta)
        if self.flag:
            out.append(("flag", self.flag))
        if self.sort != DEFAULT_SORT:
            out.append(("sort", self.sort))
        if with_limit and self.limit != DEFAULT_LIMIT:
            out.append(("limit", str(self.limit)))
        if with_cursor and self.after is not None:
            out.append(("after", self.after.encode()))
        return out

    def query(self, **changes) -> str:
        """``?…`` for this view with some fields changed (a new filter always starts at the first page)."""
        changes.setdefault("after", None)
        params = replace(self, **changes).params()
        return "?" + urlencode(params, safe=",:/") if params else ""


def has_filters(params: Mapping) -> bool:
    """Whether a query string asks for a filtered view (empty fields of a submitted form do not)."""
    for name in FILTER_PARAMS:
        values = params.getlist(name) if hasattr(params, "getlist") else [params.get(name)]
        for value in values:
            value = (value or "").strip()
            if value and not (name == "sort" and value == DEFAULT_SORT):
                return True
    return False


def _date(raw: str, label: str, problems: list[str]) -> dt.date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = dt.date.fromisoformat(raw)
    except ValueError:
        problems.append(f"“{raw[:40]}” is not a date like 2025-03-31, so the {label} filter is ignored.")
        return None
    if not MIN_DATE <= day <= MAX_DATE:
        # Bounded so the day after stays a date (9999-12-31 + 1 day overflows) and its start a timestamp.
        problems.append(
            f"{raw} is outside the dates the index holds ({MIN_DATE.isoformat()} to {MAX_DATE.isoformat()}), "
            f"so the {label} filter is ignored."
        )
        return None
    return day


def parse_filters(
    params: Mapping, *, cross_project: bool = False, known_statuses: Iterable[str] = ()
) -> tuple[Filters, list[str]]:
    """The filters a query string asks for, and one sentence per value that was ignored. Never raises."""
    problems: list[str] = []
    getlist = params.getlist if hasattr(params, "getlist") else (lambda name: [params[name]] if name in params else [])

    statuses: list[str] = []
    allowed = KNOWN_STATUSES | set(known_statuses)
    for raw in getlist("status"):
        value = raw.strip()
        if not value:
            continue
        if STATUS_FORM.fullmatch(value) and value in allowed:
            if value not in statuses:
                statuses.append(value)
        else:
            problems.append(f"There is no status “{value[:40]}”; that status filter is ignored.")

    providers: list[str] = []
    for raw in getlist("provider"):
        value = raw.strip()
        if value in PROVIDER_NAMES and value not in providers:
            providers.append(value)
        elif value:
            problems.append(f"There is no provider “{value[:40]}” (only {', '.join(PROVIDER_NAMES)}); that filter is ignored.")

    endpoint = (params.get("endpoint") or "").strip()
    if endpoint and (not endpoint.startswith("/") or len(endpoint) > 100 or not endpoint.isprintable()):
        problems.append("An endpoint looks like /v1/chat/completions; the endpoint filter is ignored.")
        endpoint = ""
    model = (params.get("model") or "").strip()
    if model and (len(model) > 200 or not model.isprintable()):
        problems.append("That model name is too long or has control characters; the model filter is ignored.")
        model = ""

    created_after = _date(params.get("created_after") or "", "“created after”", problems)
    created_before = _date(params.get("created_before") or "", "“created before”", problems)
    if created_after and created_before and created_after > created_before:
        problems.append("“Created after” is later than “created before”; both date filters are ignored.")
        created_after = created_before = None

    q = (params.get("q") or "").strip()
    if len(q) > MAX_Q or not q.isprintable():
        problems.append(f"The search text must be at most {MAX_Q} printable characters; it is ignored.")
        q = ""

    meta: list[tuple[str, str]] = []
    for raw in getlist("meta"):
        raw = raw.strip()
        if not raw:
            continue
        key, sep, value = raw.partition(":")
        key = key.strip()
        if not sep or not key or len(key) > MAX_META_KEY or len(value) > MAX_META_VALUE or not raw.isprintable():
            problems.append(f"A metadata filter is written key:value (for example team:search); “{raw[:60]}” is ignored.")
            continue
        if '"' in key or "\\" in key:
            # SQLite's JSON paths cannot quote these; q still finds the value.
            problems.append(f"A metadata key with a quote or backslash cannot be filtered on; “{raw[:60]}” is ignored (search its value with q).")
            continue
        if len(meta) >= MAX_META:
            problems.append(f"At most {MAX_META} metadata filters; “{raw[:60]}” is ignored.")
            continue
        meta.append((key, value))

    flag = (params.get("flag") or "").strip()
    if flag and flag not in FLAGS:
        problems.append(f"The flags are {', '.join(FLAGS)}; “{flag[:20]}” is ignored.")
        flag = ""

    sort = (params.get("sort") or "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        problems.append(f"Sort by {', '.join(SORTS)}; “{sort[:20]}” is ignored.")
        sort = DEFAULT_SORT

    limit = DEFAULT_LIMIT
    raw_limit = (params.get("limit") or "").strip()
    if raw_limit:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            problems.append(f"Page size must be a whole number from 1 to {MAX_LIMIT}; showing {DEFAULT_LIMIT} per page.")
            limit = DEFAULT_LIMIT

    after = None
    raw_after = (params.get("after") or "").strip()
    if raw_after:
        try:
            after = Cursor.decode(raw_after, cross_project=cross_project)
        except ValueError:
            problems.append("The “after” position in the address is not one this view wrote; showing the first page.")

    filters = Filters(
        statuses=tuple(statuses), endpoint=endpoint, model=model, created_after=created_after,
        created_before=created_before, q=q, meta=tuple(meta), flag=flag, sort=sort, after=after, limit=limit,
        providers=tuple(providers), cross_project=cross_project,
    )
    return filters, problems


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
    from ..oversight.eta import failing_q, flag_q

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


# -- counts ------------------------------------------------------------------------------------------


def status_counts(qs: QuerySet) -> dict[str, int]:
    """``{status: n}`` of ``qs`` in one GROUP BY query (cached as :func:`project_status_counts` is:
    the live list page shows the project's chips on every view)."""
    grouped = qs.order_by().values("status").annotate(n=Count("pk"))
    return cached_aggregate(grouped, lambda rows: {row["status"]: row["n"] for row in rows}, at_least=COUNTS_SECONDS)


def project_status_counts(qs: QuerySet) -> dict[str, dict[str, int]]:
    """``{project: {status: n}}`` of ``qs`` in one GROUP BY query, kept in the cache for
    :data:`COUNTS_SECONDS` under the query's SQL and the index's generation (so any write to the
    index is seen at once): every ``q`` typed into one project's search shares its counts."""

    def build(rows) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["project"], {})[row["status"]] = row["n"]
        return counts

    return cached_aggregate(qs.order_by().values("project", "status").annotate(n=Count("pk")), build, at_least=COUNTS_SECONDS)


#: Counts are keyed by the index's generation (any write makes a new key), so they may outlive the read
#: cache: between two sync passes every view of a project shares them.
COUNTS_SECONDS = 300


def cached_aggregate(grouped: QuerySet, build, *, at_least: float = 0.0):
    """``build(grouped)``, cached for ``DASHBOARD_CACHE_SECONDS`` (0: not cached), or ``at_least``
    seconds, under the SQL of ``grouped`` and :func:`index_generation`: any write to the index makes
    a new key, so a longer life never serves a stale answer."""
    seconds = float(getattr(settings, "DASHBOARD_CACHE_SECONDS", 2.0))
    if seconds <= 0:
        return build(grouped)
    seconds = max(seconds, at_least)
    try:
        sql, params = grouped.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing can match
        return build([])
    digest = hashlib.sha256(repr((sql, params)).encode()).hexdigest()[:32]
    key = f"index-counts:{digest}:{index_generation()}"
    hit = cache.get(key)
    if hit is not None:
        return hit
    value = build(grouped)
    cache.set(key, value, timeout=seconds)
    return value


def index_generation() -> str:
    """Changes whenever a batch is added to or rewritten in the index, by any process: the highest
    row id and the latest ``last_synced`` (every write sets it, index/store.py). Two index seeks
    (the primary key, and ``batchrecord_synced`` of migration 0009)."""
    table = BatchRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT MAX(id) FROM {table}), (SELECT MAX(last_synced) FROM {table})")
        top_id, synced = cursor.fetchone()
    return f"{top_id}-{synced}".replace(" ", "_")




def ordered_counts(counts: Mapping[str, int]) -> list[tuple[str, int]]:
    """Counts in lifecycle order (unfinished first), unknown statuses after, by name."""
    known = [(status, counts[status]) for status in STATUS_ORDER if counts.get(status)]
    other = sorted((status, n) for status, n in counts.items() if status not in STATUS_ORDER and n)
    return known + other


# -- one filtered view -------------------------------------------------------------------------------


@dataclass
class Found:
    """What one filtered view shows: the page, the next cursor, and the counts for the chips."""

    rows: list[BatchRecord]
    next_cursor: Cursor | None
    #: {project: {status: n}}: every batch of each project (the chips' "of all" figures).
    project_counts: dict[str, dict[str, int]]
    #: {project: {status: n}}: the batches the filter matches, status pick left out (what each chip
    #: would show if clicked).
    filter_counts: dict[str, dict[str, int]]

    def totals(self, counts: Mapping[str, Mapping[str, int]]) -> dict[str, int]:
        out: dict[str, int] = {}
        for per_status in counts.values():
            for status, n in per_status.items():
                out[status] = out.get(status, 0) + n
        return out

    def matching(self, filters: Filters) -> int:
        """How many batches the whole filter (status pick included) matches."""
        totals = self.totals(self.filter_counts)
        if filters.statuses:
            return sum(totals.get(status, 0) for status in filters.statuses)
        return sum(totals.values())


def scope(projects: list[str]) -> QuerySet:
    if len(projects) == 1:
        return BatchRecord.objects.filter(project=projects[0])
    return BatchRecord.objects.filter(project__in=projects)


# -- per-project counts without a GROUP BY on the page ------------------------------------------------


def project_generation(project: str) -> str:
    """Changes whenever one of ``project``'s rows is written: every write sets ``last_synced``
    (index/store.py). One seek of the (project, last_synced) index."""
    table = BatchRecord._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(last_synced) FROM {table} WHERE project = %s", [project])
        (synced,) = cursor.fetchone()
    return str(synced or "")


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


def counts_by_project(projects: list[str]) -> dict[str, dict[str, int]]:
    """``{project: {status: n}}``: the snapshot :func:`store_counts` left where nothing was written
    to the project since, else one (cached) GROUP BY over the projects whose snapshot is stale."""
    counts: dict[str, dict[str, int]] = {}
    fresh = set()
    snapshots = SyncState.objects.filter(project__in=projects).values_list("project", "counts_generation", "status_counts")
    for slug, generation, stored in snapshots:
        if stored is not None and generation and generation == project_generation(slug):
            fresh.add(slug)
            if stored:
                counts[slug] = {status: n for status, n in stored.items() if n}
    stale = [slug for slug in projects if slug not in fresh]
    if stale:
        counts.update(project_status_counts(scope(stale)))
    return counts


def find(projects: list[str], filters: Filters, project_counts: dict[str, dict[str, int]] | None = None) -> Found:
    """A page of the index for ``projects`` (a person's visible projects: nothing else is read) under
    ``filters``, with counts: at most two GROUP BY queries and one or two page queries. Pass
    ``project_counts`` when the caller already has them (the view reads them first to know which
    statuses exist)."""
    if not projects:
        return Found([], None, {}, {})
    base = scope(projects)
    if project_counts is None:
        project_counts = counts_by_project(projects)
    narrowed = base
    if filters.q:
        narrowed, filters = _q_candidates(base, filters)
    filter_counts = project_status_counts(filtered(narrowed, filters, with_status=False)) if filters.narrowing else project_counts
    rows, next_cursor = keyset_page(filtered(narrowed, filters), filters)
    return Found(rows, next_cursor, project_counts, filter_counts)


#: Above this many ``q`` matches the search stays a LIKE inside each query (slower, still correct).
Q_CANDIDATES = 2000


def _q_candidates(base: QuerySet, filters: Filters) -> tuple[QuerySet, Filters]:
    """Run the ``q`` substring scan once, over the narrow (project, search_text) index
    (migration 0005) rather than inside each of the count and page queries, where the planner would
    rather walk the sort index and read every row. A selective ``q`` (an id, a run name) matches a
    handful of rows, which the page and counts then fetch by primary key."""
    pks = list(base.filter(_contains_q(filters.q)).values_list("pk", flat=True)[: Q_CANDIDATES + 1])
    if len(pks) > Q_CANDIDATES:
        return base, filters
    return base.filter(pk__in=pks), replace(filters, q="", _q_applied=True)
