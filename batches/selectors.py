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
from .projects import Project
from .upstream import RETRY_BUDGET_SECONDS, Batch, BatchPage, FileContent, UpstreamError, client_for
from .upstream.breaker import page_read

T = TypeVar("T")


def longest_read_seconds() -> float:
    """The longest one upstream read can take (connect, read, and the client's retry sleeps): no
    viewer waits for another's read longer than this."""
    settings = conf()
    return settings.openai_connect_timeout + settings.openai_timeout + RETRY_BUDGET_SECONDS + 1.0


def _shared(project: Project, parts: tuple[Hashable, ...], loader: Callable[[], T]) -> T:
    """``loader()`` shared between viewers. Only the viewer that actually asks the upstream takes a
    place in the project's bulkhead (``upstream/breaker.py``): viewers answered from the cache, or
    waiting for that one read, hold none, so a burst of viewers of one slow page is still one read."""

    def read_upstream() -> T:
        with page_read(project.slug):
            return loader()

    return cache.shared_read(project.slug, parts, read_upstream, errors=(UpstreamError,), wait_seconds=longest_read_seconds())


def batch_page_get(project: Project, *, after: str | None, limit: int) -> BatchPage:
    return _shared(project, ("list", after or "", limit), lambda: client_for(project).list_batches(after=after, limit=limit))


def batch_get(project: Project, batch_id: str) -> Batch:
    return _shared(project, ("batch", batch_id), lambda: client_for(project).retrieve_batch(batch_id))


def file_content_open(project: Project, file_id: str) -> FileContent:
    """A streamed file body (never cached): iterate it or close it."""
    return client_for(project).open_file_content(file_id)
