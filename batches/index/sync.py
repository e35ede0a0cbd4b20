"""Keeping the index in step with the Batch API: one *pass* per project.

Every provider lists batches newest first (``created_at`` desc), at most 100 per call here, with a
cursor and no filter (NOTES.md §1.2, §3; Anthropic's ``after_id``, provider-specs/NOTES.md §1.2); each
client's ``list_page`` hides which, returning the page's ``next_cursor``. A pass therefore has three parts:

**Refresh** (once the backfill has started): list from the top, page by page, while a page still
brings batches the index has never seen (so a burst of new batches is never skipped) and until the
listing has passed the oldest *recent* batch the index holds as unfinished (unfinished batches are
recent: the completion window is 24 h). Then retrieve one by one only the *stragglers*: unfinished
rows older than where the listing stopped (a batch indexed as ``in_progress`` long ago), at most
``DASHBOARD_SYNC_STRAGGLERS`` per pass, least recently synced first. With 2,000 recent unfinished
batches that is 20 pages plus at most 10 retrievals, however large the index.

**Backfill** (until it is done): page down the whole list from where the last pass stopped
(``SyncState.backfill_after``), at most ``DASHBOARD_SYNC_BACKFILL_PAGES`` pages per pass so a pass
stays short (``--once`` runs it to the end). One page is held in memory at a time.

**Safety**: every page is written in one transaction together with the lease renewal and, for the
backfill, the cursor; so the cursor only moves after its page committed, and a fault (an upstream
error, a lost lease) ends the pass with one log line, leaving what was indexed as it was. Nothing is
ever deleted or rewound; the next pass resumes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from ..conf import conf
from ..models import BatchRecord, SyncState
from ..upstream import TERMINAL_STATUSES, Batch, BatchPage, UpstreamError, UpstreamNotFound
from ..upstream.registry import client_for
from . import lease
from .signals import sync_pass_finished
from .store import store_counts, upsert_batches

logger = logging.getLogger(__name__)

PAGE_SIZE = 100  # the API's maximum (NOTES.md §1.2)
# 24 h completion window, plus up to 10 min of cancelling, plus a margin for clock skew.
RECENT_SECONDS = 26 * 3600
class CountingClient:
    """The project's client, counting the upstream calls a pass makes."""

    def __init__(self, client) -> None:
        self._client = client
        self.calls = 0

    def list_page(self, *, after: str | None, limit: int) -> BatchPage:
        """Every provider's client pages the same way: a page and its ``next_cursor``."""
        self.calls += 1
        return self._client.list_page(after=after, limit=limit)

    def retrieve_batch(self, batch_id: str) -> Batch:
        self.calls += 1
        return self._client.retrieve_batch(batch_id)


@dataclass
class PassResult:
    project: str
    skipped: bool = False
    calls: int = 0
    seconds: float = 0.0
    refresh_pages: int = 0
    stragglers: int = 0
    backfill_pages: int = 0
    backfill_done: bool = False
    changed: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.skipped and not self.error

    def summary(self) -> str:
        if self.skipped:
            return f"project {self.project}: skipped, another instance holds its sync lease"
        outcome = f"stopped: {self.error}" if self.error else "ok"
        backfill = "done" if self.backfill_done else f"{self.backfill_pages} page(s) this pass, running"
        return (
            f"project {self.project}: {outcome}; {self.calls} upstream call(s) in {self.seconds:.2f}s; "
            f"refresh {self.refresh_pages} page(s) + {self.stragglers} straggler(s); backfill {backfill}; "
            f"{self.changed} status change(s)"
        )


def _key(batch: Batch) -> tuple[int, str]:
    return (batch.created_at or 0, batch.id)


class ProjectSync:
    """One pass over one project, by the instance ``owner`` that holds its lease."""

    def __init__(self, project, owner: str, *, client=None, page_size: int = PAGE_SIZE,
                 backfill_pages: int | None = None, should_stop: Callable[[], bool] = lambda: False) -> None:
        self.project = project
        self.slug = project.slug
        self.owner = owner
        self.client = CountingClient(client or client_for(project))
        self.page_size = page_size
        #: None: no bound (run the backfill to the end).
        self.backfill_pages = backfill_pages
        self.should_stop = should_stop
        self.result = PassResult(project=self.slug)

    # -- writing ---------------------------------------------------------------------------------

    def write(self, batches: Sequence[Batch], **state_fields) -> dict:
        """One transaction: the batches (with samples), the lease renewal and ``state_fields``."""
        with transaction.atomic():
            changes = upsert_batches(self.slug, batches, samples=True, source="sync")
            lease.renew(self.slug, self.owner, **state_fields)
        self.result.changed += sum(1 for old, _ in changes.values() if old is not None)
        return changes

    # -- refresh ---------------------------------------------------------------------------------

    def unfinished(self):
        return BatchRecord.objects.filter(project=self.slug).exclude(status__in=TERMINAL_STATUSES)

    def refresh(self) -> None:
        newest = BatchRecord.objects.filter(project=self.slug).aggregate(newest=Max("created_at"))["newest"]
        reference = max(time.time(), newest or 0)
        target = (
            self.unfinished()
            .filter(created_at__gte=reference - RECENT_SECONDS)
            .order_by("created_at", "batch_id")
            .values_list("created_at", "batch_id")
            .first()
        )
        page_cap = conf().sync_refresh_pages
        after, last_page = None, None
        while not self.should_stop():
            page = self.client.list_page(after=after, limit=self.page_size)
            self.result.refresh_pages += 1
            changes = self.write(page.data)
            if not page.data or not page.has_more:
                last_page = None  # the whole list was seen: no straggler can be older
                break
            last_page = page.data
            last = page.data[-1]
            after = page.next_cursor
            if changes.get(last.id, ("known",))[0] is None:
                continue  # still above the part of the list already indexed: new batches
            if target is not None and _key(last) > tuple(target) and self.result.refresh_pages < page_cap:
                continue  # not yet past the oldest recent unfinished batch
            break
        else:
            return
        if last_page is not None:
            self.stragglers(last_page)

    def straggler_slots(self) -> int:
        """How many stragglers this pass may retrieve: at most ``DASHBOARD_SYNC_STRAGGLERS``, within the
        pass's call budget (``DASHBOARD_SYNC_CALL_BUDGET``) after the list pages, and always at least
        one, so a batch older than the page cap is never starved."""
        budget = conf().sync_call_budget - self.client.calls
        return max(min(conf().sync_stragglers, budget), 1)

    def stragglers(self, last_page: Sequence[Batch]) -> None:
        """Unfinished rows older than the listing reached: retrieve each (least recently synced first)."""
        boundary = last_page[-1].created_at or 0
        ids = list(
            self.unfinished()
            .filter(Q(created_at__lte=boundary) | Q(created_at__isnull=True))
            .exclude(batch_id__in=[batch.id for batch in last_page])
            .order_by("last_synced")
            .values_list("batch_id", flat=True)[: self.straggler_slots()]
        )
        found: list[Batch] = []
        try:
            for batch_id in ids:
                if self.should_stop():
                    break
                try:
                    found.append(self.client.retrieve_batch(batch_id))
                except UpstreamNotFound:
                    # Not visible to this key (or an id the client refuses): mark it looked at, so it
                    # moves to the back of the queue instead of taking a slot every pass.
                    logger.warning("sync of project %s: straggler %r not found upstream", self.slug, batch_id[:200])
                    BatchRecord.objects.filter(project=self.slug, batch_id=batch_id).update(last_synced=timezone.now())
                self.result.stragglers += 1
        finally:
            # What was retrieved before a fault is still written.
            if found:
                self.write(found)

    # -- backfill --------------------------------------------------------------------------------

    def backfill(self) -> None:
        state = SyncState.objects.get(project=self.slug)
        after = state.backfill_after or None
        oldest = state.backfill_oldest_created_at
        while not self.should_stop():
            if self.backfill_pages is not None and self.result.backfill_pages >= self.backfill_pages:
                return
            page = self.client.list_page(after=after, limit=self.page_size)
            self.result.backfill_pages += 1
            if not page.data and page.has_more:
                raise UpstreamError("The Batch API sent an empty page that says more follow; the backfill waits.")
            fields: dict = {"backfill_done": not page.has_more}
            if page.data:
                created = [batch.created_at for batch in page.data if batch.created_at is not None]
                if created:
                    oldest = min([*created, *([oldest] if oldest is not None else [])])
                cursor = page.next_cursor or page.data[-1].id
                fields.update(backfill_after=cursor[:200], backfill_oldest_created_at=oldest)
            self.write(page.data, **fields)
            if not page.has_more:
                self.result.backfill_done = True
                return
            after = page.next_cursor

    # -- the pass --------------------------------------------------------------------------------

    def run(self) -> PassResult:
        started = time.monotonic()
        started_at = timezone.now()
        if not lease.claim(self.slug, self.owner):
            self.result.skipped = True
            return self.result
        SyncState.objects.filter(project=self.slug).update(last_pass_started=started_at)
        try:
            state = SyncState.objects.get(project=self.slug)
            self.result.backfill_done = state.backfill_done
            if state.backfill_after or state.backfill_done:
                self.refresh()
            if not state.backfill_done:
                self.backfill()
        except (UpstreamError, lease.LeaseLost) as err:
            self.result.error = str(err) or type(err).__name__
            status = getattr(err, "status_code", None)
            logger.warning(
                "sync of project %s stopped after %d upstream call(s): %s%s; the next pass resumes",
                self.slug, self.client.calls, self.result.error, f" (HTTP {status})" if status else "",
            )
        self.result.calls = self.client.calls
        self.result.seconds = time.monotonic() - started
        finished = timezone.now()
        fields = dict(
            last_pass_finished=finished,
            last_pass_seconds=round(self.result.seconds, 3),
            last_pass_calls=self.result.calls,
            last_error=self.result.error[:2000],
        )
        if not self.result.error:
            fields["last_success"] = finished
        SyncState.objects.filter(project=self.slug, lease_owner=self.owner).update(**fields)
        if not self.result.error:
            store_counts(self.slug)
            sync_pass_finished.send(sender="sync", project=self.slug)
        return self.result


def sync_project(project, owner: str, **kwargs) -> PassResult:
    """One pass over ``project`` if this instance gets its lease (see :class:`ProjectSync`)."""
    return ProjectSync(project, owner, **kwargs).run()
