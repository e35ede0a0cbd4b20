"""The batch rows of the list pages: the values each row shows, and each row rendered once per content.

The markup is ``templates/jinja2/batches/rows.jinja`` (a row and its cells as macros, each defined
once; the batch page renders the same badge, bar and cancel form through :func:`piece`). Here a batch
becomes a dict of plain values (:func:`row_view`), and the rendered row is kept per process under a key
of everything it depends on: an open list polls every few seconds and most rows have not changed since the last
tick, so a poll renders only the rows that did (``python -m bench.rows`` measures both).

Each row also carries its estimated cost (priced from the batch's own ``usage`` and ``model``, no query)
and its trouble flags. A page's flags cost at most one query: the request-count samples of the page's
unfinished batches (:func:`page_oversight`), never a query per row.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Iterable
from dataclasses import dataclass

import orjson
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template import engines
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from .cache import LocalCache
from .describe import UNUSUAL_ID_HINT, batch_hint, not_run, pct_class, pending_label, status_class, status_label
from .index.flags import samples_by_batch
from .index.records import finished_at
from .oversight import eta, pricing
from .upstream import Batch

PLACEHOLDER = "PLACEHOLDER-ID"
ROWS_TEMPLATE = "batches/rows.jinja"


@dataclass(frozen=True)
class RowContext:
    """What every row of one page shares: computed once per page, not once per row."""

    can_operate: bool
    csrf_token: str
    detail_url: str
    cancel_url: str
    tz: dt.tzinfo
    #: The project's slug: flags read that project's samples.
    project: str = ""

    @classmethod
    def build(cls, *, project: str, can_operate: bool, csrf_token: str) -> RowContext:
        return cls(
            can_operate=can_operate,
            csrf_token=str(csrf_token or ""),
            detail_url=reverse("batches:detail", args=[project, PLACEHOLDER]),
            cancel_url=reverse("batches:cancel", args=[project, PLACEHOLDER]),
            tz=timezone.get_current_timezone(),
            project=project,
        )

    def url(self, pattern: str, batch_id: str) -> str:
        # Linkable ids (upstream.ID_PATTERN) hold only characters reverse() would leave as they are.
        return pattern.replace(PLACEHOLDER, batch_id)


# A row's values are plain dicts: the rows' Jinja2 environment (dashboard/jinja2.py) looks a name up in
# a dict first, its fastest case, and a list page reads some 50 a row.


@dataclass(frozen=True, slots=True)
class FindExtras:
    """What a filtered view's row adds: the selection box, the project column, a stale-index note."""

    pick: str = ""
    form_id: str = ""
    project_name: str = ""
    project_url: str = ""
    provider_label: str = ""
    stale_ago: str = ""


def badge_of(batch: Batch, *, large: bool = False, element_id: str = "") -> dict:
    """The status badge, and the provider's own word beside it when it differs (Anthropic's ``ended``)."""
    css = f"badge badge-lg {status_class(batch.status)}" if large else f"badge {status_class(batch.status)}"
    native = batch.provider_status if batch.shows_provider_status else ""
    return {"css": css, "hint": batch_hint(batch), "label": status_label(batch.status), "element_id": element_id,
            "native": native, "native_title": f"{batch.provider_info.label}'s own status" if native else ""}


def progress_of(batch: Batch, *, large: bool = False) -> dict:
    """The request-count bar and its words. While the batch runs it is a progress bar; once it has
    finished it is a picture of the outcome, and requests that never ran are named, not "pending"."""
    counts = batch.request_counts
    if not counts or not counts.total:
        return {"counted": False, "empty_text": "not counted yet" if batch.status == "validating" else "—"}
    if not batch.counts_live and not batch.is_terminal:
        # The counts move only when the whole batch ends: no bar to fill, no percentage.
        return {"counted": True, "unknown": True, "css": "progress progress-lg" if large else "progress",
                "total_n": counts.total, "processing": f"{batch.processing:,}"}
    skipped = not_run(batch)
    words = ""
    if batch.is_terminal:
        words = f"{counts.completed:,} succeeded, {counts.failed:,} failed"
        if skipped:
            words += f", {skipped:,} {pending_label(batch).lower()}"
    return {
        "counted": True, "css": "progress progress-lg" if large else "progress", "terminal": batch.is_terminal,
        "words": words, "total_n": counts.total, "done_n": counts.done,
        "ok_class": pct_class(counts.completed_pct), "bad_class": pct_class(counts.failed_pct),
        "completed": f"{counts.completed:,}", "failed": f"{counts.failed:,}" if counts.failed else "",
        "total": f"{counts.total:,}", "skipped": f"{skipped:,}" if skipped else "",
        "skipped_label": pending_label(batch).lower(),
    }


def cancel_of(batch: Batch, ctx: RowContext, *, in_row: bool) -> dict | None:
    """The cancel form's values, or None when this person may not cancel this batch."""
    if not (ctx.can_operate and batch.can_cancel and batch.is_linkable):
        return None
    if in_row:  # the row swaps itself; the batch page swaps its live region
        where = {"form_class": "", "target": "closest tr", "sync": "#batch-table:replace", "button": "danger small",
                 "label": "Cancel"}
    else:
        where = {"form_class": "cancel-form", "target": "#batch-live", "sync": "#batch-live:replace", "button": "danger",
                 "label": "Cancel batch"}
    return {"url": ctx.url(ctx.cancel_url, batch.id), "batch_id": batch.id, **where}


def _stamp(label: str, unix: int | None, tz: dt.tzinfo) -> dict | None:
    if unix is None:
        return None
    try:
        when = dt.datetime.fromtimestamp(int(unix), tz=tz)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return {"iso": when.isoformat(), "title": f"{label} {when.strftime('%Y-%m-%d %H:%M:%S %Z')}",
            "natural": naturaltime(when)}


def row_view(batch: Batch, ctx: RowContext, oversight: eta.Oversight, price: pricing.Price,
             notice: dict | None = None, extras: FindExtras | None = None) -> dict:
    """Everything one row shows, as plain values (the ``batch-row`` partial is the markup)."""
    outcome = ""
    if batch.status == "completed":
        outcome = "all" if batch.all_failed else "some" if batch.has_failures else ""
    # Expiry matters only while the batch can still run out of time; a finished batch says when it ended.
    if batch.is_terminal:
        ended_word, ended = "finished", _stamp("Finished", finished_at(batch), ctx.tz)
    else:
        ended_word, ended = "expires", _stamp("Expires", batch.expires_at, ctx.tz)
    return {
        "id": batch.id, "css": "batch-row" if batch.is_terminal else "batch-row is-live",
        "linkable": batch.is_linkable, "detail_url": ctx.url(ctx.detail_url, batch.id) if batch.is_linkable else "",
        "unusual_hint": UNUSUAL_ID_HINT, "description": batch.description or "", "badge": badge_of(batch),
        "flags": oversight.flags, "outcome": outcome, "notice": notice, "endpoint": batch.endpoint or "—",
        "model": batch.model or "", "model_missing": "model not reported" if batch.is_terminal else "model not known yet",
        "progress": progress_of(batch), "created": _stamp("Created", batch.created_at, ctx.tz),
        "ended_word": ended_word, "ended": ended, "price": price, "cancel": cancel_of(batch, ctx, in_row=True),
        "find": extras is not None, "extras": extras,
    }


class PagePricer:
    """Prices the batches of one page, as ``pricing.batch_price`` does (per provider), looking each
    model's rates up once per page rather than once per row."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], pricing.Rates | pricing.NoPrice] = {}

    def __call__(self, batch: Batch) -> pricing.Price:
        input_tokens, cached_tokens, output_tokens = pricing.batch_tokens(batch)
        if input_tokens is None and output_tokens is None:
            return pricing.Price(None, pricing.no_usage_reason(batch.provider))
        target = pricing.pricing_model(batch)
        if isinstance(target, pricing.NoPrice):
            return pricing.Price(None, str(target))
        rates = self._rates.get(target)
        if rates is None:
            try:
                rates = pricing.rates_for(*target)
            except pricing.NoPrice as err:
                rates = err
            self._rates[target] = rates
        if isinstance(rates, pricing.NoPrice):
            return pricing.Price(None, str(rates))
        price = pricing.Price(rates.cost(input_tokens or 0, cached_tokens or 0, output_tokens or 0), rates=rates)
        return pricing.priced(price, target[1])


#: A finished batch without failures: no ETA, no flag (shared, never mutated).
NO_FLAGS = eta.Oversight(explanation="The batch has finished.")


def finished_oversight(completed: int, failed: int) -> eta.Oversight:
    """A finished batch's flags without the ETA machinery: only "failing" can apply to it."""
    if not failed:
        return NO_FLAGS
    failing = eta.failing_flag(completed, failed)
    return eta.Oversight(explanation=NO_FLAGS.explanation, flags=[failing]) if failing else NO_FLAGS


def page_oversight(project: str, batches, now: float | None = None) -> dict[str, eta.Oversight]:
    """ETA and flags of a page of upstream batches (the live list), with one query: the samples of the
    unfinished ones (a finished batch can only be "failing", which its own counts tell). The counts
    just read from the API are the freshest point of each history."""
    observed = now if now is not None else time.time()
    unfinished = [batch.id for batch in batches if not batch.is_terminal]
    samples = samples_by_batch(project, unfinished, observed) if unfinished and project else {}
    out = {}
    for batch in batches:
        if batch.is_terminal:
            counts = batch.request_counts
            out[batch.id] = finished_oversight(counts.completed, counts.failed) if counts else NO_FLAGS
        else:
            out[batch.id] = eta.compute(batch, samples.get(batch.id, ()), observed_at=observed)
    return out


# -- rendering each row once per content -----------------------------------------------------------
#
# A row's markup depends only on the batch's raw object, its flags, who looks (may they cancel, in
# which project and time zone), what a filtered view adds, and how long ago its times were (the
# relative "3 minutes ago"), so it is kept under exactly that key. The CSRF token differs per request
# and is put in afterwards.

ROW_CACHE_SIZE = 4000
CSRF_MARK = "CSRFTOKENMARK0000"
ROW_CACHE: LocalCache[tuple, str] = LocalCache(maxsize=ROW_CACHE_SIZE)


def _age_bucket(batch: Batch, now: float) -> int:
    """When the relative times of a row may read differently: every 10 s while one of them is under
    a minute old ("12 seconds ago"), else every minute."""
    recent = any(
        ts is not None and abs(now - ts) < 60 for ts in (batch.created_at, batch.expires_at, finished_at(batch))
    )
    return int(now // 10) if recent else int(now // 60)


def _row_key(batch: Batch, ctx: RowContext, flags, extras: FindExtras | None, notice, now: float) -> tuple | None:
    if notice:
        return None  # the answer to one cancel: rendered once, not kept
    try:
        raw = orjson.dumps(batch.raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None  # not plain JSON: render it, do not keep it
    return (ctx.project, ctx.can_operate, str(ctx.tz), raw, tuple(flag.slug for flag in flags), extras,
            _age_bucket(batch, now))


def _macros():
    """The macros of :data:`ROWS_TEMPLATE` (the engine keeps the compiled template; in DEBUG it reloads
    it when the file changes)."""
    return engines["rows"].env.get_template(ROWS_TEMPLATE).module


def piece(name: str, *args) -> SafeString:
    """One macro of the rows' template (``status_badge``, ``progress``, ``cancel_form``, ``flag_badge``,
    ``cost``) for a Django template: its markup, escaped by Jinja2, marked safe."""
    return SafeString(getattr(_macros(), name)(*args))


def render_row_views(views: Iterable[dict]) -> list[str]:
    """Each row through the ``batch_row`` macro (the CSRF mark stands in for the token, which
    :func:`render_rows` puts in per request)."""
    batch_row = _macros().batch_row
    return [str(batch_row(view, CSRF_MARK)) for view in views]


def rendered_rows(batches, ctx: RowContext, *, oversight: dict | None = None, extras: dict | None = None,
                  notices: dict | None = None, price=None) -> list[str]:
    """The row of each of ``batches``, from the cache when nothing it shows has changed, with
    :data:`CSRF_MARK` where the request's token goes (:func:`with_token` puts it in, once per page).
    ``oversight``, ``extras`` and ``notices`` are keyed by batch id; without ``oversight`` the page's
    flags are read here (one query)."""
    batches = list(batches)
    oversight = oversight if oversight is not None else page_oversight(ctx.project, batches)
    price = price or PagePricer()
    now = time.time()
    parts: list[str | None] = []
    missing: list[tuple[int, tuple | None, dict]] = []
    for batch in batches:
        flags = oversight[batch.id].flags
        extra = extras.get(batch.id) if extras is not None else None
        notice = notices.get(batch.id) if notices else None
        key = _row_key(batch, ctx, flags, extra, notice, now)
        cached = ROW_CACHE.get(key) if key is not None else None
        if cached is None:
            missing.append((len(parts), key, row_view(batch, ctx, oversight[batch.id], price(batch), notice, extra)))
        parts.append(cached)
    if missing:
        rendered = render_row_views(view for _, _, view in missing)
        for (index, key, _), markup in zip(missing, rendered):
            parts[index] = markup
            if key is not None:
                ROW_CACHE.put(key, markup)
    return parts


def with_token(markup: str, csrf_token: str) -> SafeString:
    """Rendered rows with this request's CSRF token in place of :data:`CSRF_MARK`. Tokens are
    alphanumeric (Django's masked CSRF token); escaped anyway, as every value in a row is."""
    return SafeString(markup.replace(CSRF_MARK, html.escape(csrf_token)))


def render_rows(batches, ctx: RowContext, **page) -> SafeString:
    """All rows of a list table (see :func:`rendered_rows`)."""
    return with_token("".join(rendered_rows(batches, ctx, **page)), ctx.csrf_token)


def render_row(batch: Batch, ctx: RowContext, notice: dict | None = None) -> SafeString:
    """One live-list row (the answer to a cancel from the row), reading its own samples."""
    return render_rows([batch], ctx, notices={batch.id: notice} if notice else None)
