"""Finding batches: filtered views of the index, ``/search/`` across projects, export, bulk cancel.

Everything here reads the dashboard's own index (``BatchRecord``, kept fresh by ``manage.py
sync_batches`` and the webhooks), never the upstream: a filter, a count or an export costs no API call.
Only bulk cancel writes, and it goes through ``services.batch_request_cancel`` one batch at a time (audited).

What a person sees is bounded by ``visible_projects(request)``: a project they may not see is never
read, so it appears in no row, count or export. A bad filter value becomes a sentence on the page and
is ignored (``index/query.py``), never a 500.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString
from django.views.decorators.http import require_POST, require_safe
from django.views.decorators.vary import vary_on_headers

from .. import describe, rows
from .. import services
from ..access import actor_name, may_operate, project_view, visible_projects
from ..index import query
from ..index.records import batch_from_record
from ..models import BatchRecord, SyncState
from ..oversight import eta, pricing
from ..projects import Project, get_project
from ..upstream import (
    ID_PATTERN,
    PROVIDERS,
    UpstreamConflict,
    UpstreamError,
    UpstreamNotFound,
)
from ..vocabulary import (
    CANCELLABLE_STATUSES,
    FLAG_LABELS,
    KNOWN_STATUSES,
    PAGE_SIZES,
    SORT_LABELS,
    SORTS,
    STATUS_ORDER,
    TERMINAL_STATUSES,
    poll_seconds_text,
    stale_after_seconds,
)

logger = logging.getLogger("batches.views")

#: At most this many batches per bulk cancel (each is one upstream call, in this request).
BULK_CANCEL_CAP = 500
EXPORT_CHUNK = 500


# -- freshness ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    """How fresh a project's index is, for the line beside filtered results."""

    project: Project
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
        return ago is not None and ago > stale_after_seconds()

    @property
    def last_error(self) -> str:
        return (self.state.last_error if self.state else "") or ""


def freshness_of(projects: list[Project]) -> list[Freshness]:
    states = {state.project: state for state in SyncState.objects.filter(project__in=[p.slug for p in projects])}
    now = timezone.now()
    return [Freshness(project, states.get(project.slug), now) for project in projects]


def stale_before() -> dt.datetime:
    """Rows last synced before this are older than two sync intervals."""
    return timezone.now() - dt.timedelta(seconds=stale_after_seconds())


# -- rows --------------------------------------------------------------------------------------------


def render_find_rows(
    records: list[BatchRecord], request: HttpRequest, *, csrf_token: str, show_project: bool, form_id: str
) -> SafeString:
    """The table rows of a filtered view: the live list's row (templates/batches/_rows.html), plus a
    selection checkbox (operators, cancellable rows), the project (``/search/``) and a note on rows
    whose indexed state is older than two sync intervals (unfinished rows only: a finished batch does
    not change). Rows are rendered per project (each project has its own URLs and operators)."""
    threshold = stale_before()
    now = timezone.now()
    oversight = _page_oversight(records)
    price = rows.PagePricer()
    by_project: dict[str, list[BatchRecord]] = {}
    for record in records:
        by_project.setdefault(record.project, []).append(record)
    rendered: dict[tuple[str, str], str] = {}
    for slug, group in by_project.items():
        project = get_project(slug)
        operate = project is not None and may_operate(request, project)
        ctx = rows.RowContext.build(project=slug, can_operate=operate, csrf_token=csrf_token)
        batches, extras = [], {}
        for record in group:
            batch = batch_from_record(record)
            batches.append(batch)
            stale = ""
            if not batch.is_terminal and record.last_synced and record.last_synced < threshold:
                stale = describe.duration(max(int((now - record.last_synced).total_seconds()), 0)) or "0 s"
            extras[batch.id] = rows.FindExtras(
                pick=f"{slug}/{batch.id}" if operate and batch.can_cancel and batch.is_linkable else "",
                form_id=form_id,
                project_name=(project.name if project else slug) if show_project else "",
                project_url=reverse("batches:list", args=[slug]) if show_project else "",
                provider_label=batch.provider_info.label if show_project else "",
                stale_ago=stale,
            )
        page = {batch.id: oversight[slug, batch.id] for batch in batches}
        for batch, row in zip(batches, rows.rendered_rows(batches, ctx, oversight=page, extras=extras, price=price)):
            rendered[slug, batch.id] = row
    return SafeString("".join(rendered[record.project, record.batch_id] for record in records))


def _page_oversight(records: list[BatchRecord]) -> dict[tuple[str, str], eta.Oversight]:
    """ETA and flags of a page of index rows: one sample query per project on the page (a project's
    page is one query; ``/search/`` one per project it shows), never one per row."""
    by_project: dict[str, list[BatchRecord]] = {}
    out = {}
    for record in records:
        if record.status in TERMINAL_STATUSES:  # only "failing" can apply: no history needed
            out[record.project, record.batch_id] = rows.finished_oversight(
                record.completed_requests or 0, record.failed_requests or 0
            )
        else:
            by_project.setdefault(record.project, []).append(record)
    for slug, group in by_project.items():
        for batch_id, info in eta.oversight_for(slug, group).items():
            out[slug, batch_id] = info
    return out


# -- the filtered views ------------------------------------------------------------------------------


def _chips(filters: query.Filters, found: query.Found, base_url: str) -> list[dict]:
    """One chip per status with batches: its count under the current filter (and of everything), and a
    link that picks that status keeping every other filter."""
    filter_totals = found.totals(found.filter_counts)
    project_totals = found.totals(found.project_counts)
    chips = [{
        "label": "all", "status": "", "count": sum(filter_totals.values()), "of": sum(project_totals.values()),
        "url": base_url + filters.query(statuses=()), "active": not filters.statuses,
    }]
    for status, total in query.ordered_counts(project_totals):
        chips.append({
            "label": describe.status_label(status), "status": status, "count": filter_totals.get(status, 0), "of": total,
            "url": base_url + filters.query(statuses=(status,)), "active": status in filters.statuses,
            "class": describe.status_class(status),
        })
    return chips


def _parse(request: HttpRequest, projects: list[Project], *, cross_project: bool):
    """The filters, the problems, and the projects' per-status counts (read first: a status the
    upstream added lately is filterable as soon as the index holds it)."""
    slugs = [p.slug for p in projects]
    counts = query.counts_by_project(slugs) if slugs else {}
    known = {status for per in counts.values() for status in per}
    filters, problems = query.parse_filters(request.GET, cross_project=cross_project, known_statuses=known)
    return filters, problems, counts


def _find_context(request: HttpRequest, projects: list[Project], filters: query.Filters, problems: list[str],
                  base_url: str, *, show_project: bool, export_url: str, cancel_url: str, cost_url: str,
                  counts=None) -> dict:
    found = query.find([p.slug for p in projects], filters, counts)
    form_id = "bulk-cancel-form"
    freshness = freshness_of(projects)
    next_url = None
    if found.next_cursor is not None:

        next_url = base_url + "?" + urlencode(replace(filters, after=found.next_cursor).params(), safe=",:/")
    self_params = filters.params()
    filter_params = filters.params(with_cursor=False, with_limit=False)
    export_query = "?" + urlencode(filter_params, safe=",:/") if filter_params else ""
    return {
        "filters": filters,
        "problems": problems,
        "found": found,
        "rows_html": render_find_rows(
            found.rows, request, csrf_token=_csrf(request), show_project=show_project, form_id=form_id
        ),
        "row_count": len(found.rows),
        "matching": found.matching(filters),
        "chips": _chips(filters, found, base_url),
        "next_url": next_url,
        "first_url": base_url + filters.query() if filters.after else None,
        "self_url": base_url + ("?" + urlencode(self_params, safe=",:/") if self_params else ""),
        "clear_url": base_url,
        "freshness": freshness,
        "never_synced": [f for f in freshness if f.never_synced],
        "show_project": show_project,
        "provider_choices": [(info.name, info.label) for info in PROVIDERS.values()],
        "can_operate_any": any(may_operate(request, p) for p in projects),
        "form_id": form_id,
        "cancel_url": cancel_url,
        "hidden_filters": filter_params,
        "export_csv": export_url.replace("KIND", "csv") + export_query,
        "export_jsonl": export_url.replace("KIND", "jsonl") + export_query,
        "status_choices": _status_choices(found, filters),
        "sorts": list(SORT_LABELS.items()),
        "flag_choices": list(FLAG_LABELS.items()),
        "page_sizes": sorted({*PAGE_SIZES, filters.limit}),
        "meta_values": [f"{k}:{v}" for k, v in filters.meta] + [""],
        # A poll (the table's own hx-trigger) must not swap the filter form under someone typing in it.
        "oob_form": bool(request.htmx) and request.htmx.trigger != "batch-table",
        "filtered": True,
        # While the page shows unfinished rows it polls itself, one request per tick, as the live list
        # does: the index learns of changes from the sync and the webhooks, and the rows follow.
        "live": any(record.status not in TERMINAL_STATUSES for record in found.rows),
        "poll_seconds": poll_seconds_text(),
        # "$412.18 for 1,240 batches; 14 without a known price" for everything the filter matches is
        # one grouped query over all of it (hundreds of ms over 200,000 rows), so the page asks for it
        # after it has shown (cost_total below) instead of waiting for it.
        "cost_total_url": cost_url + export_query,
    }


def _matching(projects: list[Project], filters: query.Filters):
    """Every row the filters match (all pages), for totals."""

    return query.filtered(query.scope([p.slug for p in projects]), replace(filters, after=None))


def _status_choices(found: query.Found | None, filters: query.Filters) -> list[str]:
    seen = set(found.totals(found.project_counts)) if found else set()
    return [s for s in STATUS_ORDER] + sorted(seen - set(STATUS_ORDER))


def _csrf(request: HttpRequest) -> str:
    from django.middleware.csrf import get_token

    return get_token(request)


def _known_statuses(slugs: list[str]) -> set[str]:
    """Statuses the index holds beyond the known ones (new upstream statuses stay filterable)."""
    return set(
        BatchRecord.objects.filter(project__in=slugs).exclude(status__in=KNOWN_STATUSES)
        .order_by().values_list("status", flat=True).distinct()
    )


def filter_form_context(project: Project | None) -> dict:
    """What the filter form needs on the unfiltered (live) list page."""
    filters = query.Filters()
    return {
        "filters": filters,
        "status_choices": list(STATUS_ORDER),
        "sorts": list(SORT_LABELS.items()),
        "flag_choices": list(FLAG_LABELS.items()),
        "meta_values": [""],
    }


def project_chips(project: Project) -> list[dict]:
    """The project's per-status counts from the index (one GROUP BY), as chips for the live page."""
    counts = query.counts_by_project([project.slug]).get(project.slug, {})
    base = reverse("batches:list", args=[project.slug])
    filters = query.Filters()
    return [
        {"label": describe.status_label(status), "status": status, "count": n, "url": base + filters.query(statuses=(status,)),
         "class": describe.status_class(status), "active": False}
        for status, n in query.ordered_counts(counts)
    ]


def project_find(request: HttpRequest, project: Project) -> HttpResponse:
    """``/projects/<slug>/batches/?status=…``: the list page served from the index (called by
    ``browse.batch_list`` when any filter parameter is present)."""
    filters, problems, counts = _parse(request, [project], cross_project=False)
    base_url = reverse("batches:list", args=[project.slug])
    context = _find_context(
        request, [project], filters, problems, base_url, show_project=False,
        export_url=reverse("batches:export", args=[project.slug, "KIND"]),
        cost_url=reverse("batches:cost_total", args=[project.slug]),
        cancel_url=reverse("batches:bulk_cancel", args=[project.slug]), counts=counts,
    )
    context["can_operate"] = may_operate(request, project)
    template = "batches/batch_list.html"
    if request.htmx:
        template += "#find-table"
    # A corrected value still shows a page: 200 for htmx (it swaps only 2xx), 400 on a cold open.
    status = 400 if problems and not request.htmx else 200
    return render(request, template, context, status=status)


@require_safe
@vary_on_headers("HX-Request")
def search(request: HttpRequest) -> HttpResponse:
    """``/search/``: the same filters over every project the person may see, with a project column and
    counts per project."""
    projects = visible_projects(request)
    filters, problems, counts = _parse(request, projects, cross_project=True)
    context = _find_context(
        request, projects, filters, problems, reverse("search"), show_project=True,
        export_url=reverse("search_export", args=["KIND"]), cancel_url=reverse("search_bulk_cancel"),
        cost_url=reverse("search_cost_total"), counts=counts,
    )
    context["per_project"] = _per_project(projects, context["found"], filters)
    template = "batches/search.html"
    if request.htmx:
        template += "#search-table"
    status = 400 if problems and not request.htmx else 200
    return render(request, template, context, status=status)


def _per_project(projects: list[Project], found: query.Found, filters: query.Filters) -> list[dict]:
    out = []
    for project in projects:
        counts = found.filter_counts.get(project.slug, {})
        matching = sum(n for s, n in counts.items() if not filters.statuses or s in filters.statuses)
        out.append({
            "project": project,
            "matching": matching,
            "total": sum(found.project_counts.get(project.slug, {}).values()),
            "counts": query.ordered_counts(counts),
            "url": reverse("batches:list", args=[project.slug]) + filters.query(),
        })
    return out


# -- export ------------------------------------------------------------------------------------------

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


def _with_oversight(records: Iterator[BatchRecord]) -> Iterator[dict]:
    """Each row's export values plus its cost and flags. Rows are taken a chunk at a time so the flags
    of a chunk's unfinished batches cost one sample query per project, and memory stays flat."""
    price = rows.PagePricer()
    chunk: list[BatchRecord] = []

    def flush():
        flags = _page_oversight(chunk)
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


def _export_rows(projects: list[Project], filters: query.Filters) -> Iterator[BatchRecord]:
    """Every matching row in the view's order, read in chunks: a thousand rows never sit in memory."""

    if not projects:
        return iter(())
    slugs = [p.slug for p in projects]
    base = BatchRecord.objects.filter(project=slugs[0]) if len(slugs) == 1 else BatchRecord.objects.filter(project__in=slugs)
    column, desc = SORTS[filters.sort]
    sign = "-" if desc else ""
    order = [f"{sign}{column}", f"{sign}batch_id", f"{sign}project"]
    qs = query.filtered(base, replace(filters, after=None)).order_by(*order).defer("raw", "search_text")
    return qs.iterator(chunk_size=EXPORT_CHUNK)


def _export_response(records: Iterator[BatchRecord], kind: str, name: str) -> StreamingHttpResponse:
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    if kind == "csv":
        writer = csv.writer(_Echo())

        columns = EXPORT_COLUMNS + OVERSIGHT_COLUMNS

        def lines():
            yield writer.writerow(columns)
            for values in _with_oversight(records):
                values["flags"] = " ".join(values["flags"])
                yield writer.writerow([csv_cell(values[c]) for c in columns])

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    else:
        def lines():
            for values in _with_oversight(records):
                yield json.dumps(values, ensure_ascii=False) + "\n"

        response = StreamingHttpResponse(lines(), content_type="application/x-ndjson; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{kind}"'
    response["Cache-Control"] = "no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _kind(kind: str) -> str:
    if kind not in ("csv", "jsonl"):
        raise Http404("Export as .csv or .jsonl.")
    return kind


def refuse_filter(request: HttpRequest, problems: list[str], what: str, verb: str, back_url: str) -> HttpResponse:
    """An export, total or action whose filter has a problem does nothing (400): ignoring the bad value,
    as a page does, would widen it to batches the person never picked."""
    context = {"problems": problems, "what": what, "verb": verb, "back_url": back_url}
    template = "batches/filter_refused.html" + ("#refusal" if request.htmx else "")
    return render(request, template, context, status=400)


@require_safe
@project_view
def export(request: HttpRequest, project: Project, kind: str) -> HttpResponse:
    """``/projects/<slug>/batches/export.csv?<filters>`` (or ``.jsonl``): the filtered view, every page."""
    kind = _kind(kind)
    filters, problems = query.parse_filters(request.GET, known_statuses=_known_statuses([project.slug]))
    if problems:
        return refuse_filter(request, problems, "An export", "exported", reverse("batches:list", args=[project.slug]))
    return _export_response(_export_rows([project], filters), kind, f"batches-{project.slug}")


@require_safe
def search_export(request: HttpRequest, kind: str) -> HttpResponse:
    kind = _kind(kind)
    projects = visible_projects(request)
    filters, problems = query.parse_filters(
        request.GET, cross_project=True, known_statuses=_known_statuses([p.slug for p in projects])
    )
    if problems:
        return refuse_filter(request, problems, "An export", "exported", reverse("search"))
    return _export_response(_export_rows(projects, filters), kind, "batches-search")


# -- cost of everything a filter matches -------------------------------------------------------------

#: The total is keyed by the index's generation, so it may live longer than the read cache.
COST_TOTAL_SECONDS = 300


def _cost_total_response(request: HttpRequest, projects: list[Project], filters: query.Filters, back_url: str):
    total = query.cached_aggregate(
        pricing.usage_by_model(_matching(projects, filters)), pricing.total_of, at_least=COST_TOTAL_SECONDS
    )
    context = {"total": total, "price_source": pricing.price_data_label(), "back_url": back_url}
    template = "batches/find_cost.html"
    if request.htmx:
        template += "#find-cost"
    return render(request, template, context)


@require_safe
@vary_on_headers("HX-Request")
@project_view
def cost_total(request: HttpRequest, project: Project) -> HttpResponse:
    """The estimated cost of every batch a filtered view matches (the view loads it once shown)."""
    filters, problems = query.parse_filters(request.GET, known_statuses=_known_statuses([project.slug]))
    back = reverse("batches:list", args=[project.slug]) + filters.query()
    if problems:
        return refuse_filter(request, problems, "A cost total", "priced", back)
    return _cost_total_response(request, [project], filters, back)


@require_safe
@vary_on_headers("HX-Request")
def search_cost_total(request: HttpRequest) -> HttpResponse:
    projects = visible_projects(request)
    filters, problems = query.parse_filters(
        request.GET, cross_project=True, known_statuses=_known_statuses([p.slug for p in projects])
    )
    if problems:
        return refuse_filter(request, problems, "A cost total", "priced", reverse("search") + filters.query())
    return _cost_total_response(request, projects, filters, reverse("search") + filters.query())


# -- bulk cancel -------------------------------------------------------------------------------------


@dataclass
class Pick:
    slug: str
    batch_id: str
    project: Project | None = None
    record: BatchRecord | None = None
    operator: bool = False
    outcome: str = ""
    detail: str = ""

    @property
    def value(self) -> str:
        return f"{self.slug}/{self.batch_id}"

    @property
    def cancellable(self) -> bool:
        return self.operator and self.record is not None and self.record.status in CANCELLABLE_STATUSES

    @property
    def expectation(self) -> str:
        """What confirming would do to this batch, from what the index knows."""
        if self.record is None:
            return "not found"
        if not self.operator:
            return "refused: you are not an operator of this project"
        if self.record.status in CANCELLABLE_STATUSES:
            return "will be cancelled"
        if self.record.status in TERMINAL_STATUSES:
            return f"already finished ({self.record.status})"
        return f"not cancellable ({describe.status_label(self.record.status)})"


def _parse_picks(values: list[str], allowed: dict[str, Project]) -> list[Pick]:
    picks: list[Pick] = []
    seen = set()
    for value in values:
        slug, sep, batch_id = value.partition("/")
        if not sep or not ID_PATTERN.fullmatch(batch_id) or (slug, batch_id) in seen:
            continue
        seen.add((slug, batch_id))
        picks.append(Pick(slug=slug, batch_id=batch_id, project=allowed.get(slug)))
    return picks


def _resolve(request: HttpRequest, picks: list[Pick]) -> None:
    """Attach each pick's index row and whether this person may cancel in its project. A project the
    person may not see is treated as unknown: its batches are "not found", nothing about them leaks."""
    by_project: dict[str, list[Pick]] = {}
    for pick in picks:
        if pick.project is not None:
            by_project.setdefault(pick.slug, []).append(pick)
    for slug, group in by_project.items():
        records = {
            r.batch_id: r
            for r in BatchRecord.objects.filter(project=slug, batch_id__in=[p.batch_id for p in group]).defer("raw")
        }
        operator = may_operate(request, group[0].project)
        for pick in group:
            pick.record = records.get(pick.batch_id)
            pick.operator = operator


def _cancel_one(request: HttpRequest, pick: Pick) -> None:
    if pick.record is None or pick.project is None:
        pick.outcome, pick.detail = "not found", "No such batch in the index of a project you may see."
        return
    if not pick.operator:
        pick.outcome, pick.detail = "refused", f"You are not an operator of project {pick.project.name}."
        return
    if pick.record.status not in CANCELLABLE_STATUSES:
        # The index says it already finished (a final state) or is cancelling: no upstream call.
        pick.outcome, pick.detail = "already finished", f"The batch is {describe.status_label(pick.record.status)}."
        return
    try:
        batch = services.batch_request_cancel(pick.project, actor=actor_name(request), batch_id=pick.batch_id)
    except UpstreamConflict as err:
        pick.outcome = "already finished"
        pick.detail = "The API answered 409: the batch finished before the cancel arrived." + (
            f" It said: “{err.upstream_message}”" if err.upstream_message else ""
        )
    except UpstreamNotFound:
        pick.outcome, pick.detail = "not found", "The Batch API does not know this id."
    except UpstreamError as err:
        pick.outcome, pick.detail = "failed", f"{err} {err.hint or ''}".strip()
    else:
        pick.outcome, pick.detail = describe.status_label(batch.status), "Cancel requested."


def _bulk_cancel(request: HttpRequest, projects: list[Project], scope_url: str, back_url: str) -> HttpResponse:
    allowed = {p.slug: p for p in projects}
    truncated = False
    back_url = back_url if back_url.startswith("/") and not back_url.startswith("//") else scope_url
    if request.POST.get("all") == "1":
        filters, problems = query.parse_filters(request.POST, cross_project=True, known_statuses=_known_statuses(list(allowed)))
        if problems:
            return refuse_filter(request, problems, "Cancelling all matching", "cancelled", back_url)
        base = BatchRecord.objects.filter(project__in=list(allowed))
        records = list(
            query.filtered(base, replace(filters, after=None))
            .order_by("-created_at", "-batch_id").values_list("project", "batch_id")[: BULK_CANCEL_CAP + 1]
        )
        values = [f"{slug}/{batch_id}" for slug, batch_id in records]
    else:
        values = request.POST.getlist("pick")
    picks = _parse_picks(values, allowed)
    if len(picks) > BULK_CANCEL_CAP:
        picks, truncated = picks[:BULK_CANCEL_CAP], True
    _resolve(request, picks)
    context = {
        "picks": picks,
        "truncated": truncated,
        "cap": BULK_CANCEL_CAP,
        "scope_url": scope_url,
        "back_url": back_url,
        "done": False,
    }
    if request.POST.get("confirm") == "1":
        for pick in picks:
            _cancel_one(request, pick)
        context["done"] = True
        context["outcomes"] = _tally(p.outcome for p in picks)
    else:
        context["cancellable"] = sum(1 for p in picks if p.cancellable)
    return render(request, "batches/_find_bulk_cancel.html", context)


def _tally(outcomes) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome] = counts.get(outcome, 0) + 1
    return sorted(counts.items())


@require_POST
@project_view
def bulk_cancel(request: HttpRequest, project: Project) -> HttpResponse:
    """``POST /projects/<slug>/batches/bulk-cancel/``: picks (``pick=<slug>/<id>``) or ``all=1`` plus
    the view's filters → a confirmation page; with ``confirm=1`` → each cancel, outcome per batch."""
    return _bulk_cancel(
        request, [project], reverse("batches:bulk_cancel", args=[project.slug]),
        request.POST.get("back", "") or reverse("batches:list", args=[project.slug]),
    )


@require_POST
def search_bulk_cancel(request: HttpRequest) -> HttpResponse:
    return _bulk_cancel(
        request, visible_projects(request), reverse("search_bulk_cancel"), request.POST.get("back", "") or reverse("search")
    )
