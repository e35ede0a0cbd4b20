"""The index stands in for an upstream that is not answering (issue #23 item 3).

When the Batch API times out, is unreachable, or its breaker is open (``upstream/breaker.py``), the
list and a batch's page show what the dashboard's index holds, with a sentence saying so and how old
it is, instead of an error page. Everything else (results, files, creating, cancelling) needs the API
itself and says that it is not answering.
"""

from __future__ import annotations

from django.utils import timezone

from ..describe import duration
from ..index import selectors
from ..index.records import batch_from_record
from ..projects import Project
from ..upstream import Batch, BatchPage, UpstreamError, UpstreamTimeout, UpstreamUnavailable

#: The faults the index can stand in for: the API did not answer at all (an HTTP error status is an
#: answer, shown as it is).
STAND_IN_FOR = (UpstreamUnavailable, UpstreamTimeout)


def _no_answer(err: UpstreamError) -> bool:
    return isinstance(err, STAND_IN_FOR) and err.status_code is None


def _ago(when) -> str:
    return f"as of {duration(max(int((timezone.now() - when).total_seconds()), 0)) or '0 s'} ago"


def stand_in_batch(project: Project, batch_id: str, err: UpstreamError) -> tuple[Batch, dict] | None:
    """The batch as the index last saw it, and the notice for its page; None when the index cannot stand in."""
    if not _no_answer(err):
        return None
    record = selectors.record_of(project.slug, batch_id)
    if record is None:
        return None
    text = (f"{err} This is the batch as the dashboard's index last saw it ({_ago(record.last_synced)}); "
            "the page refreshes by itself.")
    return batch_from_record(record), {"level": "warning", "text": text}


def stand_in_page(project: Project, after: str | None, limit: int, err: UpstreamError) -> tuple[BatchPage, str] | None:
    """A page of the list from the index (newest first, as the API lists), and the sentence saying so."""
    state = selectors.sync_state_of(project.slug)
    if not _no_answer(err) or state is None or state.last_success is None:
        return None  # an index never filled by a sync pass would show "no batches", which is not true
    found = selectors.newest_page(project.slug, after, limit)
    if found is None:
        return None
    rows, has_more = found
    page = BatchPage(data=tuple(batch_from_record(row) for row in rows), has_more=has_more)
    sentence = (f"{err} The list below comes from the dashboard's index "
                f"({_ago(state.last_success)}) and refreshes by itself.")
    return page, sentence
