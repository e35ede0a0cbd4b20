"""When will an unfinished batch finish, and is it in trouble? Computed from the index's
``BatchSample`` history (one sample of the request counts per sync pass or webhook).

Method (docs/oversight.md):

* The history is the batch's samples plus two anchors the batch itself gives: 0 requests done at
  ``in_progress_at`` and all done at ``finalizing_at``, and its current counts at ``last_synced``.
* The recent rate is the change in finished requests (completed + failed) over the last
  :data:`RATE_WINDOW` seconds of history, measured from the oldest point inside the window to the newest;
  with only one point in the window, from the point just before it. A span shorter than
  :data:`MIN_RATE_SPAN` (samples seconds apart) is replaced by the whole history since the batch started,
  so a burst over a few seconds never outweighs it. ETA = newest time + remaining ÷ rate. Spans under two
  minutes are said in seconds.
* No ETA (with the reason) while validating, before the batch has counted its requests, with fewer than
  two points of history, or when nothing finished over the measured span.

Flags, each with one sentence:

* **at risk**: the ETA is past ``expires_at``, so requests will expire unfinished;
* **stalled**: no request finished for :data:`STALL_SECONDS` while ``in_progress`` or ``finalizing``
  (measured over observed history only: the span from the first point with the current counts and
  status to the newest point);
* **failing**: more than :data:`FAILING_RATIO` of finished requests failed (this one also applies to
  finished batches, and is a plain SQL filter).

A provider whose counts do not move while a batch runs (Anthropic's stay in ``processing`` until the
whole batch has ended, provider-specs/NOTES.md §1.3) gets no rate, no ETA and no "stalled" from them:
nothing would be measured but silence. Time still tells one thing truthfully: a batch still processing
with less than :data:`LAST_HOUR` seconds to its expiry is **at risk**.

:func:`batches.index.flags.flag_q` builds the ``flag=`` filter for the list and the search; ``index/flags.py``
reads the samples. This module reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from datetime import timezone as dt_timezone

from django.utils import dateformat, timezone

from ..upstream import Batch
from ..vocabulary import PROGRESSING_STATUSES, TERMINAL_STATUSES

RATE_WINDOW = 15 * 60
#: A rate measured over less than this is replaced by the rate since the batch started.
MIN_RATE_SPAN = 5 * 60
STALL_SECONDS = 30 * 60
FAILING_RATIO = 0.10
#: A batch whose counts do not move is at risk once it is still processing this close to its expiry.
LAST_HOUR = 3600


@dataclass(frozen=True)
class Flag:
    slug: str
    label: str
    sentence: str


@dataclass(frozen=True)
class Point:
    at: float  # unix seconds
    status: str
    total: int
    done: int


@dataclass
class Oversight:
    """ETA and flags of one batch."""

    eta_at: int | None = None
    #: Finished requests per minute over the measured span.
    rate_per_minute: float | None = None
    remaining: int = 0
    #: How the ETA was measured, or why there is none.
    explanation: str = ""
    flags: list[Flag] = field(default_factory=list)

    @property
    def flag_slugs(self) -> list[str]:
        return [flag.slug for flag in self.flags]

    @property
    def eta_datetime(self) -> datetime | None:
        return datetime.fromtimestamp(self.eta_at, tz=dt_timezone.utc) if self.eta_at is not None else None


def _when(unix: float) -> str:
    return dateformat.format(timezone.localtime(datetime.fromtimestamp(unix, tz=dt_timezone.utc)), "Y-m-d H:i T")


def span_text(seconds: float) -> str:
    """A span as words: seconds under two minutes ("40 seconds"), else minutes and hours."""
    if seconds < 120:
        whole = max(round(seconds), 1)
        return f"{whole} second" + ("" if whole == 1 else "s")
    return _minutes(seconds)


def _minutes(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes >= 120:
        return f"{minutes // 60} hours {minutes % 60} minutes" if minutes % 60 else f"{minutes // 60} hours"
    return f"{minutes} minute" + ("" if minutes == 1 else "s")


def batch_state(batch: Batch, seen_at: float | None = None) -> dict:
    """The fields the ETA needs from a batch, and when its counts were read (unix time, if known)."""
    counts = batch.request_counts
    return {
        "counts_live": batch.counts_live,
        "status": batch.status,
        "total": counts.total if counts else 0,
        "completed": counts.completed if counts else 0,
        "failed": counts.failed if counts else 0,
        "in_progress_at": batch.in_progress_at,
        "finalizing_at": batch.finalizing_at,
        "expires_at": batch.expires_at,
        "seen_at": seen_at,
    }


def failing_flag(completed: int, failed: int) -> Flag | None:
    finished = completed + failed
    if finished <= 0 or failed <= FAILING_RATIO * finished:
        return None
    share = round(100 * failed / finished)
    return Flag(
        "failing",
        "failing",
        f"{share} % of finished requests failed ({failed:,} of {finished:,}), more than the "
        f"{round(FAILING_RATIO * 100)} % that marks a batch as failing.",
    )


def _history(state: dict, samples: Iterable) -> list[Point]:
    points: list[Point] = []
    if state["in_progress_at"] is not None:
        points.append(Point(float(state["in_progress_at"]), "in_progress", state["total"], 0))
    if state["finalizing_at"] is not None:
        points.append(Point(float(state["finalizing_at"]), "finalizing", state["total"], state["total"]))
    for sample in samples:
        points.append(
            Point(sample.taken_at.timestamp(), sample.status, sample.total_requests, sample.completed_requests + sample.failed_requests)
        )
    if state["seen_at"] is not None:
        points.append(Point(state["seen_at"], state["status"], state["total"], state["completed"] + state["failed"]))
    points.sort(key=lambda point: point.at)
    return points


def compute(batch: Batch, samples: Iterable, observed_at: float | None = None) -> Oversight:
    """ETA and flags for ``batch`` from its ``BatchSample`` rows. ``observed_at``: when ``batch``'s
    counts were read (an upstream ``Batch`` just retrieved: now; an index row: its ``last_synced``)."""
    state = batch_state(batch, observed_at)
    result = Oversight()
    failing = failing_flag(state["completed"], state["failed"])
    if state["status"] in TERMINAL_STATUSES:
        result.explanation = "The batch has finished."
        if failing:
            result.flags.append(failing)
        return result

    done = state["completed"] + state["failed"]
    result.remaining = max(state["total"] - done, 0)
    if not state["counts_live"]:
        return _without_live_counts(result, state, failing)
    points = _history(state, samples)
    if state["status"] == "validating" or state["total"] <= 0:
        result.explanation = "No ETA yet: the batch has not started counting its requests."
    elif state["status"] == "finalizing" or (result.remaining == 0 and state["status"] == "in_progress"):
        result.explanation = "All requests are done; the Batch API is writing the output files."
    elif state["status"] not in PROGRESSING_STATUSES:
        result.explanation = f"No ETA while the batch is {state['status'].replace('_', ' ')}."
    else:
        _eta(result, points)

    stalled = _stalled(state, points)
    expires = state["expires_at"]
    if result.eta_at is not None and expires is not None and result.eta_at > expires:
        newest = points[-1]
        done_by_expiry = newest.done + result.rate_per_minute / 60 * max(expires - newest.at, 0)
        unfinished = max(round(newest.total - done_by_expiry), 1)
        result.flags.append(
            Flag(
                "at-risk",
                "at risk",
                f"At {result.rate_per_minute:,.1f} requests a minute it would finish at {_when(result.eta_at)}, after it "
                f"expires at {_when(expires)}, so about {unfinished:,} requests would expire unfinished.",
            )
        )
    if stalled:
        result.flags.append(stalled)
    if failing:
        result.flags.append(failing)
    return result


def _without_live_counts(result: Oversight, state: dict, failing: Flag | None) -> Oversight:
    """A batch whose counts only move when it ends: no rate and no ETA, but the time to expiry."""
    result.explanation = (
        f"No ETA: {result.remaining:,} requests processing, and this provider reports no progress "
        "until the whole batch has ended."
    )
    expires, now = state["expires_at"], state["seen_at"] or timezone.now().timestamp()
    if expires is not None and state["status"] in PROGRESSING_STATUSES and expires - now < LAST_HOUR:
        left = max(expires - now, 0)
        result.flags.append(
            Flag(
                "at-risk",
                "at risk",
                f"Still processing {_minutes(left)} before it expires at {_when(expires)}: requests not done by then "
                "will expire unfinished.",
            )
        )
    if failing:
        result.flags.append(failing)
    return result


def _eta(result: Oversight, points: list[Point]) -> None:
    if len(points) < 2:
        result.explanation = "No ETA yet: it needs two observations of the batch's progress (one more sync)."
        return
    newest = points[-1]
    window = [point for point in points if point.at >= newest.at - RATE_WINDOW]
    oldest = window[0] if len(window) >= 2 else points[-2]
    since_start = False
    if newest.at - oldest.at < MIN_RATE_SPAN and newest.at - points[0].at > newest.at - oldest.at:
        # Samples seconds apart say little: a burst over the last 20 s must not outweigh what the
        # batch has done since it started, so the rate is measured over the whole history instead.
        oldest, since_start = points[0], True
    span = newest.at - oldest.at
    progress = newest.done - oldest.done
    if span <= 0:
        result.explanation = "No ETA yet: it needs two observations of the batch's progress (one more sync)."
        return
    over = f"since it started {span_text(span)} ago" if since_start else f"over the last {span_text(span)}"
    if progress <= 0:
        result.explanation = f"No ETA: no request finished {over}."
        result.rate_per_minute = 0.0
        return
    rate = progress / span
    remaining = max(newest.total - newest.done, 0)
    result.rate_per_minute = rate * 60
    result.eta_at = round(newest.at + remaining / rate)
    result.explanation = f"{remaining:,} requests left at {result.rate_per_minute:,.1f} a minute, the rate {over}."


def _stalled(state: dict, points: list[Point]) -> Flag | None:
    if state["status"] not in PROGRESSING_STATUSES or not points:
        return None
    newest = points[-1]
    run_start = newest.at
    for point in reversed(points):
        if point.done != newest.done or point.status != newest.status:
            break
        run_start = point.at
    quiet = newest.at - run_start
    if quiet < STALL_SECONDS:
        return None
    doing = "in progress" if newest.status == "in_progress" else "finalizing"
    what = "no request has finished" if newest.status == "in_progress" else "the batch has not moved on"
    return Flag("stalled", "stalled", f"Stalled: {what} for {_minutes(quiet)} while the batch is {doing}.")
