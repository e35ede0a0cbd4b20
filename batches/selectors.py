"""Reads from a project's upstream, shared between viewers.

Views call these, never the client directly. Identical reads within ``DASHBOARD_CACHE_SECONDS`` are
shared (``cache.py``); every key carries the project, so one project's answer is never served under
another's URL. Ids were validated where they entered (the URL or the form); the client checks again
before anything reaches an upstream URL.
"""

from __future__ import annotations

from . import cache
from .projects import Project
from .upstream import Batch, BatchPage, FileContent, FileObject, ResultRecords, client_for


def batch_page_get(project: Project, *, after: str | None, limit: int) -> BatchPage:
    return cache.shared_read(
        project.slug, ("list", after or "", limit), lambda: client_for(project).list_batches(after=after, limit=limit)
    )


def batch_get(project: Project, batch_id: str) -> Batch:
    return cache.shared_read(project.slug, ("batch", batch_id), lambda: client_for(project).retrieve_batch(batch_id))


def file_get(project: Project, file_id: str) -> FileObject:
    return cache.shared_read(project.slug, ("file", file_id), lambda: client_for(project).retrieve_file(file_id))


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
