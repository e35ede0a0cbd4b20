"""The dashboard's vocabulary, defined once: batch statuses and their sets, trouble flags, page sizes,
sort keys, the poll clamp, the project slug pattern and the "two sync intervals" staleness rule.

This is the ground floor: it imports nothing from the dashboard, so every layer (upstream, index,
oversight, notify, views, templates' tags) can import it without a cycle.
"""

from __future__ import annotations

import re

# -- statuses (shared/openai-spec/NOTES.md §2: Batch.status) ------------------------------------------

#: Every status the API documents today. New statuses appear over time and must still render and filter.
KNOWN_STATUSES = frozenset(
    {"validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"}
)
#: A batch in one of these never changes again.
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
#: The statuses a cancel request is accepted in.
CANCELLABLE_STATUSES = frozenset({"validating", "in_progress", "finalizing"})
#: The known statuses that are still moving. An unknown status counts as unfinished too: test
#: ``status not in TERMINAL_STATUSES`` rather than membership here when the status came from upstream.
UNFINISHED_STATUSES = KNOWN_STATUSES - TERMINAL_STATUSES
#: Statuses in which requests are being processed, so a frozen count means a stall.
PROGRESSING_STATUSES = frozenset({"in_progress", "finalizing"})
#: The terminal statuses that mean the batch did not finish its work.
BAD_OUTCOMES = frozenset({"failed", "expired"})
#: The order statuses are listed in (filters, count chips): the life of a batch, then its endings.
STATUS_ORDER = ("validating", "in_progress", "finalizing", "cancelling", "completed", "failed", "expired", "cancelled")


def is_finished(status: str) -> bool:
    return status in TERMINAL_STATUSES


# -- trouble flags (batches/oversight/eta.py decides them) ---------------------------------------------

AT_RISK, STALLED, FAILING = "at-risk", "stalled", "failing"
FLAGS = (AT_RISK, STALLED, FAILING)
FLAG_LABELS = {AT_RISK: "at risk", STALLED: "stalled", FAILING: "failing"}

# -- paging (NOTES.md §1.2: "Limit can range between 1 and 100, and the default is 20") ----------------

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
PAGE_SIZES = (10, 20, 50, 100)

# -- sorting the index ----------------------------------------------------------------------------------

DEFAULT_SORT = "-created"
#: sort parameter -> (column, descending)
SORTS: dict[str, tuple[str, bool]] = {
    "-created": ("created_at", True),
    "created": ("created_at", False),
    "expires": ("expires_at", False),
    "-failed": ("failed_requests", True),
}
SORT_LABELS = {
    "-created": "Newest first",
    "created": "Oldest first",
    "expires": "Expiring soonest",
    "-failed": "Most failed requests",
}

# -- projects ---------------------------------------------------------------------------------------------

SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
DEFAULT_SLUG = "default"
