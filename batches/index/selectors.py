"""Every read of the index that a page makes: one filtered view (a page and its counts), the counts
by status, how fresh each project's index is, the rows an export or a bulk cancel works through.

Views call these (and ``index/filters.py`` for the query string); the queries themselves are built in
``index/query.py``. What a person sees is bounded by the project slugs passed in: callers pass
``visible_projects(request)``, so a project they may not see is never read.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, QuerySet
from django.utils import timezone

from ..cache import shared_value
from ..conf import conf
from ..models import BatchRecord, SyncState
from ..vocabulary import KNOWN_STATUSES, SORTS, STATUS_ORDER
from .filters import Cursor, Filters
from .query import q_candidates, filtered, keyset_page

# -- counts ------------------------------------------------------------------------------------------


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
    seconds = conf().cache_seconds
    if seconds <= 0:
        return build(grouped)
    try:
        sql, params = grouped.query.sql_with_params()
    except EmptyResultSet:  # e.g. pk__in=[]: nothing can match
        return build([])
    digest = hashlib.sha256(repr((sql, params)).encode()).hexdigest()[:32]
    key = f"index-counts:{digest}:{index_generation()}"
    return shared_value(key, lambda: build(grouped), seconds=max(seconds, at_least))


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
        narrowed, filters = q_candidates(base, filters)
    filter_counts = project_status_counts(filtered(narrowed, filters, with_status=False)) if filters.narrowing else project_counts
    # The page's rows without their raw JSON and search text: the rows are made into batches from a
    # per-process cache (index/records.py), which reads the raw JSON only of rows that changed.
    rows, next_cursor = keyset_page(filtered(narrowed, filters).defer("raw", "search_text"), filters)
    return Found(rows, next_cursor, project_counts, filter_counts)




# -- freshness ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How fresh a project's index is, for the line beside filtered results."""

    project: object  # a projects.Project
    state: SyncState | None
    now: dt.datetime

    @property
    def never_synced(self) -> bool:
        return self.state is None or self.state.last_success is None

    @property
    def seconds_ago(self) -> int | None:
        if self.never_synced:
            return None
        return max(int((self.now - self.state.last_success).total_seconds()), 0)

    @property
    def behind(self) -> bool:
        """More than two sync intervals since the last good pass."""
        ago = self.seconds_ago
        return ago is not None and ago > conf().stale_after_seconds

    @property
    def last_error(self) -> str:
        return (self.state.last_error if self.state else "") or ""


def freshness_of(projects: list) -> list[Freshness]:
    states = {state.project: state for state in SyncState.objects.filter(project__in=[p.slug for p in projects])}
    now = timezone.now()
    return [Freshness(project, states.get(project.slug), now) for project in projects]


def sync_state_of(slug: str) -> SyncState | None:
    return SyncState.objects.filter(project=slug).first()


def record_of(slug: str, batch_id: str) -> BatchRecord | None:
    return BatchRecord.objects.filter(project=slug, batch_id=batch_id).first()


def newest_page(slug: str, after: str | None, limit: int) -> tuple[list[BatchRecord], bool] | None:
    """A page of ``slug``'s rows newest first (as the API lists them), after the row of batch ``after``;
    and whether more follow. None when ``after`` is not in the index."""
    cursor = None
    if after:
        record = BatchRecord.objects.filter(project=slug, batch_id=after).only("created_at").first()
        if record is None:
            return None
        cursor = Cursor(key=record.created_at, batch_id=after)
    rows, next_cursor = keyset_page(scope([slug]), Filters(after=cursor, limit=limit))
    return rows, next_cursor is not None


def stale_before() -> dt.datetime:
    """Rows last synced before this are older than two sync intervals."""
    return timezone.now() - dt.timedelta(seconds=conf().stale_after_seconds)


def unknown_statuses(slugs: list[str]) -> set[str]:
    """Statuses the index holds beyond the known ones (new upstream statuses stay filterable)."""
    return set(
        BatchRecord.objects.filter(project__in=slugs).exclude(status__in=KNOWN_STATUSES)
        .order_by().values_list("status", flat=True).distinct()
    )


# -- every row a filter matches ------------------------------------------------------------------------

#: Exports read this many rows at a time.
EXPORT_CHUNK = 500


def matching(slugs: list[str], filters: Filters) -> QuerySet:
    """Every row the filters match (all pages), for totals."""
    return filtered(scope(slugs), replace(filters, after=None))


def export_records(slugs: list[str], filters: Filters) -> Iterator[BatchRecord]:
    """Every matching row in the view's order, read in chunks: a thousand rows never sit in memory."""
    if not slugs:
        return iter(())
    column, desc = SORTS[filters.sort]
    sign = "-" if desc else ""
    order = [f"{sign}{column}", f"{sign}batch_id", f"{sign}project"]
    qs = matching(slugs, filters).order_by(*order).defer("raw", "search_text")
    return qs.iterator(chunk_size=EXPORT_CHUNK)


def newest_matching_ids(slugs: list[str], filters: Filters, limit: int) -> list[tuple[str, str]]:
    """``(project, batch_id)`` of the newest ``limit`` rows the filters match (a bulk cancel's picks)."""
    return list(matching(slugs, filters).order_by("-created_at", "-batch_id").values_list("project", "batch_id")[:limit])


def records_by_id(slug: str, batch_ids: list[str]) -> dict[str, BatchRecord]:
    return {r.batch_id: r for r in BatchRecord.objects.filter(project=slug, batch_id__in=batch_ids).defer("raw")}
