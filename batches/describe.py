"""What a batch's state says in words: status labels and hints, what never ran, when results go.

Plain text for templates and pages (they escape it); the markup lives in ``templates/jinja2/batches/rows.jinja``.
"""

from __future__ import annotations

from .index.records import finished_at
from .upstream import Batch, provider_info
from .vocabulary import KNOWN_STATUSES

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


def duration(seconds) -> str:
    """A short human duration: "45 s", "12 min", "3 h 05 min", "2 d 4 h"."""
    try:
        total = int(seconds)
    except (TypeError, ValueError):
        return ""
    if total < 0:
        return ""
    if total < 60:
        return f"{total} s"
    minutes, _ = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
