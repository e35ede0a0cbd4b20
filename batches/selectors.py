"""Reads from a project's upstream, shared between viewers.

Views call these, never the client directly. Identical reads within ``DASHBOARD_CACHE_SECONDS`` are
shared (``cache.py``); every key carries the project, so one project's answer is never served under
another's URL. Ids were validated where they entered (the URL or the form); the client checks again
before anything reaches an upstream URL.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

from . import cache
from .conf import conf
from .index import records
from .projects import Project
from .upstream import RETRY_BUDGET_SECONDS, Batch, BatchPage, FileContent, ResultRecords, UpstreamError, client_for
from .upstream.breaker import UpstreamNotAnswering, page_read

T = TypeVar("T")


def longest_read_seconds() -> float:
    """The longest one upstream read can take (connect, read, and the client's retry sleeps): no
    viewer waits for another's read longer than this."""
    settings = conf()
    return settings.openai_connect_timeout + settings.openai_timeout + RETRY_BUDGET_SECONDS + 1.0


def _shared(project: Project, parts: tuple[Hashable, ...], loader: Callable[[], T], stand_in=None) -> T:
    """``loader()`` shared between viewers. Only the viewer that actually asks the upstream takes a place
    in the project's bulkhead (``upstream/breaker.py``): viewers answered from the cache, or waiting for
    that one read (at most its page deadline), hold none, so a burst on one slow page is still one read.
    ``stand_in`` says whether the index could stand in for this read: then a view that finds every place
    taken is answered from the index at once."""

    def read_upstream() -> T:
        with page_read(project.slug, stand_in):
            return loader()

    def impatient() -> None:
        # Another view of this page has waited on the upstream for DASHBOARD_UPSTREAM_SLOW_SECONDS: where
        # the index can stand in, answer from it now rather than hold a web thread for the rest of the
        # wait (sixteen viewers of one hung page would otherwise hold every thread, /healthz queued).
        if stand_in is not None and stand_in():
            raise UpstreamNotAnswering(
                "The Batch API is slow to answer: another view of this page has been waiting for it for "
                f"{conf().upstream_slow_seconds:g} s or more on this server.",
                retry_after=5.0,
            )

    return cache.shared_read(project.slug, parts, read_upstream, errors=(UpstreamError,), wait_seconds=longest_read_seconds(),
                             patience=conf().upstream_slow_seconds, impatient=impatient)


def batch_page_get(project: Project, *, after: str | None, limit: int) -> BatchPage:
    return _shared(project, ("list", after or "", limit), lambda: client_for(project).list_batches(after=after, limit=limit),
                   stand_in=lambda: records.index_can_list(project.slug, after))


def batch_get(project: Project, batch_id: str) -> Batch:
    return _shared(project, ("batch", batch_id), lambda: client_for(project).retrieve_batch(batch_id),
                   stand_in=lambda: records.index_holds(project.slug, batch_id))


def file_content_open(project: Project, file_id: str) -> FileContent:
    """A streamed file body (never cached): iterate it or close it."""
    return client_for(project).open_file_content(file_id)


def result_records(project: Project, batch: Batch) -> ResultRecords:
    """A finished (or running) batch's result lines in the common shape, whatever the provider, streamed
    once (never cached); after iterating, ``.usage`` holds their summed usage per model."""
    return client_for(project).result_records(batch)


def results_file_open(project: Project, batch: Batch) -> FileContent:
    """The results file of a batch whose provider has one instead of output and error files (its
    ``results_url``), streamed as the provider sends it (never cached)."""
    return client_for(project).open_results(batch)
