"""The batch list's rows, rendered in Python.

A 100-row page rendered through a Django template spent about 25 ms in the template engine (some 45
variable lookups, four date filters and two ``naturaltime`` calls per row; measured with
``python -m bench.profile``), which is most of what the dashboard adds to the upstream's time. The
same markup built here costs about a quarter of that. Every value still goes through ``_fmt``, which
escapes exactly as ``format_html`` does: nothing is marked safe that was not escaped first.

Each row also carries its estimated cost (priced from the batch's own ``usage`` and ``model``, no query)
and its trouble flags beside the status. A page's flags cost at most one query: the request-count
samples of the page's unfinished batches (:func:`page_oversight`), never a query per row.
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import orjson

from django.contrib.humanize.templatetags.humanize import naturaltime
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeData, SafeString

from .oversight import eta, pricing
from .upstream import KNOWN_STATUSES, Batch, provider_info

PLACEHOLDER = "PLACEHOLDER-ID"


def _escape(arg) -> str:
    if isinstance(arg, SafeData):
        return arg
    if type(arg) is int:
        return str(arg)
    return html.escape(str(arg))


def _fmt(template: str, *args) -> SafeString:
    """``format_html`` without its lazy-string machinery: each argument is escaped exactly as
    ``django.utils.html.escape`` does (``html.escape`` with quotes) unless it is already safe HTML."""
    return SafeString(template.format(*map(_escape, args)))


STATUS_HINTS = {
    # Wording follows the Batch guide's status table (shared/openai-spec/NOTES.md §4).
    "validating": "The input file is being validated before the batch can begin.",
    "failed": "The input file failed validation, or the batch could not run.",
    "in_progress": "The input file was validated and the batch is running.",
    "finalizing": "The batch has run; its results are being prepared.",
    "completed": "The batch has finished.",
    "expired": "The batch was not finished within its completion window.",
    "cancelling": "Cancel requested; in-flight requests are finishing (up to 10 minutes).",
    "cancelled": "The batch was cancelled.",
}
UNKNOWN_STATUS_HINT = "A status this dashboard does not know yet; shown as the API sent it."
UNUSUAL_ID_HINT = (
    "This id has characters the dashboard will not put into a URL, so the batch cannot be opened or cancelled here."
)


def status_class(status: str) -> str:
    return f"status-{status}" if status in KNOWN_STATUSES else "status-unknown"


def status_label(status: str) -> str:
    return (status or "unknown").replace("_", " ")


def status_hint(status: str) -> str:
    return STATUS_HINTS.get(status, UNKNOWN_STATUS_HINT)


def not_run(batch: Batch) -> int:
    """Requests of a finished batch that never ran (cancelled, expired or failed before them)."""
    counts = batch.request_counts
    return counts.pending if batch.is_terminal and counts else 0


def pending_label(batch: Batch) -> str:
    """What the requests without an outcome are: still to run, or never run and why."""
    return f"Not run: {status_label(batch.status)}" if batch.is_terminal else "Pending"


def batch_hint(batch: Batch) -> str:
    """One true sentence about this batch's state: its status's meaning, with the counts that the
    status alone cannot tell (whether a completed batch's requests all succeeded, what never ran)."""
    counts = batch.request_counts
    hint = provider_info(batch.provider).status_hints.get(batch.status) or status_hint(batch.status)
    if not counts or not counts.total:
        return hint
    if batch.status == "completed":
        if batch.all_failed:
            hint = "The batch has finished, but every request failed."
        elif counts.failed:
            hint = f"The batch has finished; {counts.failed:,} of {counts.total:,} requests failed."
        elif not counts.pending:
            hint = "The batch has finished and every request succeeded."
    skipped = not_run(batch)
    if skipped:
        return f"{hint} {skipped:,} of {counts.total:,} requests were not run."
    return hint


def finished_at(batch: Batch) -> int | None:
    """When a finished batch reached its final status."""
    return batch.completed_at or batch.failed_at or batch.cancelled_at or batch.expired_at


# "The output file will automatically be deleted 30 days after the batch is complete", unless the batch
# set ``output_expires_after`` (anchored at the file's creation, which is when the batch finished;
# NOTES.md §6.3 and §2).
RESULTS_KEPT_SECONDS = 30 * 86400


def results_deleted_at(batch: Batch) -> int | None:
    """When a finished batch's output and error files are deleted upstream (unix time), if it has any."""
    end = finished_at(batch)
    if not batch.is_terminal or end is None or not (batch.output_file_id or batch.error_file_id):
        return None
    expiry = batch.raw.get("output_expires_after") if isinstance(batch.raw, dict) else None
    seconds = expiry.get("seconds") if isinstance(expiry, dict) else None
    if not isinstance(seconds, int) or isinstance(seconds, bool) or seconds <= 0:
        seconds = RESULTS_KEPT_SECONDS
    return end + seconds


def pct_class(value) -> str:
    """A width class (w-0 … w-100) for progress bars: CSP forbids style attributes."""
    try:
        pct = int(round(float(value)))
    except (TypeError, ValueError):
        pct = 0
    return f"w-{min(max(pct, 0), 100)}"


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


def _time(label: str, unix: int | None, tz: dt.tzinfo) -> SafeString | None:
    if unix is None:
        return None
    try:
        when = dt.datetime.fromtimestamp(int(unix), tz=tz)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return _fmt(
        '<time datetime="{}" title="{} {}">{}</time>',
        when.isoformat(),
        label,
        when.strftime("%Y-%m-%d %H:%M:%S %Z"),
        naturaltime(when),
    )


def _id_cell(batch: Batch, ctx: RowContext) -> SafeString:
    if batch.is_linkable:
        ident = _fmt('<a href="{}"><code>{}</code></a>', ctx.url(ctx.detail_url, batch.id), batch.id)
    else:
        ident = _fmt(
            '<code>{}</code> <span class="flag flag-warn" title="{}">unusual id</span>', batch.id, UNUSUAL_ID_HINT
        )
    if batch.description:
        desc = _fmt('<span title="{}">{}</span>', batch.description, batch.description)
    else:
        desc = SafeString('<span class="muted">No description</span>')
    return _fmt('<td class="col-id">\n    {}\n    <div class="desc">{}</div>\n  </td>', ident, desc)


def status_badge(batch: Batch, *, large: bool = False, element_id: str = "") -> SafeString:
    """The status badge: the list's rows and the batch page use this one definition. When the
    provider's own word differs (Anthropic's ``ended``, ``canceling``), it is shown beside it."""
    native = ""
    if batch.shows_provider_status:
        native = _fmt(
            ' <span class="provider-status" title="{}">{}</span>',
            f"{provider_info(batch.provider).label}'s own status",
            batch.provider_status,
        )
    return _fmt(
        '<span{} class="badge{} {}" title="{}">{}</span>{}',
        _fmt(' id="{}"', element_id) if element_id else "",
        " badge-lg" if large else "",
        status_class(batch.status),
        batch_hint(batch),
        status_label(batch.status),
        native,
    )


def progress(batch: Batch, *, large: bool = False) -> SafeString:
    """The request-count bar and its words. While the batch runs it is a progress bar; once it has
    finished it is a picture of the outcome, and requests that never ran are named, not "pending"."""
    counts = batch.request_counts
    if not counts or not counts.total:
        text = "not counted yet" if batch.status == "validating" else "—"
        return _fmt('<span class="muted">{}</span>', text)
    if not batch.counts_live and not batch.is_terminal:
        # The counts move only when the whole batch ends: no bar to fill, no percentage.
        return _fmt(
            '<div class="progress progress-unknown{}" role="progressbar" aria-label="Requests processing" '
            'aria-valuemin="0" aria-valuemax="{}" aria-valuetext="{} requests processing"></div>\n'
            '    <div class="progress-text">{} requests processing</div>',
            " progress-lg" if large else "",
            counts.total,
            f"{batch.processing:,}",
            f"{batch.processing:,}",
        )
    if batch.is_terminal:
        skipped = not_run(batch)
        words = f"{counts.completed:,} succeeded, {counts.failed:,} failed"
        if skipped:
            words += f", {skipped:,} {pending_label(batch).lower()}"
        role = _fmt('role="img" aria-label="{} of {} requests: {}"', "Outcome", f"{counts.total:,}", words)
    else:
        role = _fmt(
            'role="progressbar" aria-label="Requests done" aria-valuemin="0" aria-valuemax="{}" aria-valuenow="{}"',
            counts.total,
            counts.done,
        )
    failed = _fmt(' + <span class="num-bad">{} failed</span>', f"{counts.failed:,}") if counts.failed else ""
    skipped = not_run(batch)
    rest = (
        _fmt('\n    <div class="progress-text not-run">{} {}</div>', f"{skipped:,}", pending_label(batch).lower())
        if skipped
        else ""
    )
    return _fmt(
        '<div class="progress{}" {}><span class="ok {}"></span><span class="bad {}"></span></div>\n'
        '    <div class="progress-text"><span class="num-ok">{}</span>{} / {}</div>{}',
        " progress-lg" if large else "",
        role,
        pct_class(counts.completed_pct),
        pct_class(counts.failed_pct),
        f"{counts.completed:,}",
        failed,
        f"{counts.total:,}",
        rest,
    )


def cancel_form(batch: Batch, ctx: RowContext, *, in_row: bool) -> SafeString:
    """The cancel form (a real POST; htmx swaps the row or the batch page's live region), or nothing
    when this person may not cancel this batch."""
    if not (ctx.can_operate and batch.can_cancel and batch.is_linkable):
        return SafeString("")
    url = ctx.url(ctx.cancel_url, batch.id)
    form_class, target, sync, label, size = (
        ("", "closest tr", "#batch-table:replace", "Cancel", " small")
        if in_row
        else (' class="cancel-form"', "#batch-live", "#batch-live:replace", "Cancel batch", "")
    )
    return _fmt(
        '<form{} method="post" action="{}"\n'
        '          hx-post="{}" hx-target="{}" hx-swap="outerHTML" hx-sync="{}"\n'
        '          hx-confirm="Cancel batch {}? Requests already running will finish; the rest will not run."\n'
        '          hx-disabled-elt="find button">\n'
        '      <input type="hidden" name="csrfmiddlewaretoken" value="{}"><button type="submit" class="danger{}">{}</button>\n'
        "    </form>",
        SafeString(form_class),
        url,
        url,
        target,
        sync,
        batch.id,
        ctx.csrf_token,
        size,
        label,
    )


def flag_badges(flags) -> SafeString:
    """The trouble flags (at risk, stalled, failing) as badges, each carrying its sentence (the same
    markup as ``_oversight.html#oversight-flag-badges``)."""
    return SafeString(
        "".join(
            _fmt(
                ' <span class="badge flag-badge flag-{}" title="{}">{}<span class="visually-hidden">: {}</span></span>',
                flag.slug,
                flag.sentence,
                flag.label,
                flag.sentence,
            )
            for flag in flags
        )
    )


def cost_cell(price: pricing.Price) -> SafeString:
    """The cost column: the estimate, or "no price" with its reason (never $0)."""
    if price.known:
        return _fmt('<td class="col-cost"><span class="cost">{}</span></td>', price.display)
    return _fmt(
        '<td class="col-cost"><span class="no-price" title="{}">no price<span class="visually-hidden">: {}</span></span></td>',
        price.reason,
        price.reason,
    )


class PagePricer:
    """Prices the batches of one page, as ``pricing.batch_price`` does, looking each model's rates up
    once per page rather than once per row."""

    def __init__(self) -> None:
        self._rates: dict[tuple[str, str], pricing.Rates | pricing.NoPrice] = {}

    def __call__(self, batch) -> pricing.Price:
        input_tokens, cached_tokens, output_tokens = pricing.batch_tokens(batch)
        if input_tokens is None and output_tokens is None:
            return pricing.Price(None, pricing.no_usage_reason(getattr(batch, "provider", "")))
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


def page_oversight(project: str, batches, now: float | None = None) -> dict[str, eta.Oversight]:
    """ETA and flags of a page of upstream batches (the live list), with one query: the samples of the
    unfinished ones (a finished batch can only be "failing", which its own counts tell). The counts
    just read from the API are the freshest point of each history."""
    observed = now if now is not None else time.time()
    unfinished = [batch.id for batch in batches if not batch.is_terminal]
    samples = eta.samples_by_batch(project, unfinished, observed) if unfinished and project else {}
    out = {}
    for batch in batches:
        if batch.is_terminal:
            out[batch.id] = finished_oversight(batch.request_counts.completed, batch.request_counts.failed) if batch.request_counts else NO_FLAGS
        else:
            out[batch.id] = eta.compute(batch, samples.get(batch.id, ()), observed_at=observed)
    return out


#: A finished batch without failures: no ETA, no flag (shared, never mutated).
NO_FLAGS = eta.Oversight(explanation="The batch has finished.")


def finished_oversight(completed: int, failed: int) -> eta.Oversight:
    """A finished batch's flags without the ETA machinery: only "failing" can apply to it."""
    if not failed:
        return NO_FLAGS
    failing = eta.failing_flag(completed, failed)
    return eta.Oversight(explanation=NO_FLAGS.explanation, flags=[failing]) if failing else NO_FLAGS


def _status_cell(batch: Batch, notice: dict | None, flags=()) -> SafeString:
    flag = ""
    if batch.status == "completed" and batch.all_failed:
        flag = SafeString('<span class="flag flag-bad" title="Every request failed">all failed</span>')
    elif batch.status == "completed" and batch.has_failures:
        flag = SafeString('<span class="flag flag-warn" title="Some requests failed">some failed</span>')
    note = ""
    if notice:
        note = _fmt(
            '<div class="row-notice notice-{}" role="status">{}</div>', notice.get("level", "info"), notice.get("text", "")
        )
    return _fmt(
        '<td class="col-status">\n    {}{}\n    {}{}\n  </td>', status_badge(batch), flag_badges(flags), flag, note
    )


def _endpoint_cell(batch: Batch) -> SafeString:
    if batch.model:
        model = _fmt("{}", batch.model)
    else:
        missing = "model not reported" if batch.is_terminal else "model not known yet"
        model = _fmt('<span class="muted">{}</span>', missing)
    return _fmt(
        '<td class="col-endpoint">\n    <code class="endpoint">{}</code>\n    <div class="model">{}</div>\n  </td>',
        batch.endpoint or "—",
        model,
    )


def _progress_cell(batch: Batch) -> SafeString:
    return _fmt('<td class="col-progress">\n    {}\n  </td>', progress(batch))


def _time_cell(batch: Batch, ctx: RowContext) -> SafeString:
    created = _time("Created", batch.created_at, ctx.tz) or SafeString('<span class="muted">—</span>')
    # Expiry matters only while the batch can still run out of time; a finished batch says when it ended.
    if batch.is_terminal:
        when = _time("Finished", finished_at(batch), ctx.tz)
        second = _fmt('<div class="time-note">finished {}</div>', when) if when else ""
    else:
        when = _time("Expires", batch.expires_at, ctx.tz)
        second = _fmt('<div class="time-note">expires {}</div>', when) if when else ""
    return _fmt('<td class="col-time">\n    {}\n    {}\n  </td>', created, second)


def _actions_cell(batch: Batch, ctx: RowContext) -> SafeString:
    return _fmt('<td class="col-actions">{}</td>', cancel_form(batch, ctx, in_row=True))


def render_row(
    batch: Batch,
    ctx: RowContext,
    notice: dict | None = None,
    oversight: eta.Oversight | None = None,
    price=pricing.batch_price,
) -> SafeString:
    """One live-list row. ``oversight`` comes from :func:`page_oversight` for a whole page; a single row
    (the answer to a cancel from the row) reads its own samples."""
    if oversight is None:
        oversight = page_oversight(ctx.project, [batch])[batch.id]
    live = "" if batch.is_terminal else " is-live"
    return _fmt(
        '<tr id="row-{}" class="batch-row{}">\n  {}\n  {}\n  {}\n  {}\n  {}\n  {}\n  {}\n</tr>\n',
        batch.id,
        live,
        _id_cell(batch, ctx),
        _status_cell(batch, notice, oversight.flags),
        _endpoint_cell(batch),
        _progress_cell(batch),
        _time_cell(batch, ctx),
        cost_cell(price(batch)),
        _actions_cell(batch, ctx),
    )


# -- rendering each row once per content -----------------------------------------------------------
#
# An open list polls every few seconds, and most rows have not changed since the last tick. A row's
# markup depends only on the batch's raw object, its flags, who looks (may they cancel, in which
# project and time zone) and how long ago its times were (the relative "3 minutes ago"), so it is kept
# per process under exactly that key. The CSRF token differs per request and is put in afterwards.

ROW_CACHE_SIZE = 4000
CSRF_MARK = "CSRFTOKENMARK0000"
_row_cache: OrderedDict[tuple, str] = OrderedDict()
_row_cache_lock = threading.Lock()


class _RowCache:
    def clear(self) -> None:
        with _row_cache_lock:
            _row_cache.clear()

    def __len__(self) -> int:
        return len(_row_cache)


ROW_CACHE = _RowCache()


def _age_bucket(batch: Batch, now: float) -> int:
    """When the relative times of a row may read differently: every 10 s while one of them is under
    a minute old ("12 seconds ago"), else every minute."""
    recent = any(
        ts is not None and abs(now - ts) < 60 for ts in (batch.created_at, batch.expires_at, finished_at(batch))
    )
    return int(now // 10) if recent else int(now // 60)


def _row_key(batch: Batch, ctx: RowContext, flags, now: float) -> tuple | None:
    try:
        raw = orjson.dumps(batch.raw, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return None  # not plain JSON: render it, do not keep it
    return (ctx.project, ctx.can_operate, str(ctx.tz), raw, tuple(flag.slug for flag in flags), _age_bucket(batch, now))


def render_rows(batches, ctx: RowContext) -> SafeString:
    batches = list(batches)
    oversight = page_oversight(ctx.project, batches)
    price = PagePricer()
    marked = replace(ctx, csrf_token=CSRF_MARK)
    now = time.time()
    parts = []
    for batch in batches:
        key = _row_key(batch, marked, oversight[batch.id].flags, now)
        html_row = _row_cache.get(key) if key is not None else None
        if html_row is None:
            html_row = str(render_row(batch, marked, oversight=oversight[batch.id], price=price))
            if key is not None:
                with _row_cache_lock:
                    _row_cache[key] = html_row
                    while len(_row_cache) > ROW_CACHE_SIZE:
                        _row_cache.popitem(last=False)
        parts.append(html_row)
    # Tokens are alphanumeric (Django's masked CSRF token); escaped anyway, as every value in a row is.
    return SafeString("".join(parts).replace(CSRF_MARK, html.escape(ctx.csrf_token)))

