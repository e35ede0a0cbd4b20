"""One pooled client per project and process.

The registry hands out the :class:`~batches.upstream.client.BatchClient` of a project (its key, base
URL and headers). A client is rebuilt only when its project's configuration changes (tests override
settings), so keep-alive connections are reused across page views.
"""

from __future__ import annotations

import threading

from django.conf import settings

from .client import BatchClient

_lock = threading.Lock()
_clients: dict[str, tuple[tuple, BatchClient]] = {}


def client_for(project) -> BatchClient:
    """The process-wide client of ``project`` (a :class:`batches.projects.Project`)."""
    config = (
        project.base_url,
        project.api_key,
        project.organization,
        project.project_id,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_CONNECT_TIMEOUT,
    )
    entry = _clients.get(project.slug)
    if entry is not None and entry[0] == config:
        return entry[1]
    with _lock:
        entry = _clients.get(project.slug)
        if entry is not None and entry[0] == config:
            return entry[1]
        if entry is not None:
            entry[1].close()
        client = BatchClient(
            base_url=project.base_url,
            api_key=project.api_key or "sk-no-key-configured",
            organization=project.organization or None,
            project=project.project_id or None,
            timeout=settings.OPENAI_TIMEOUT,
            connect_timeout=settings.OPENAI_CONNECT_TIMEOUT,
            label=project.slug,
        )
        _clients[project.slug] = (config, client)
        return client
