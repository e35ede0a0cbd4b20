"""One pooled client per project and process, of the project's provider.

The registry hands out the client of a project (its provider, key, base URL and headers): an
:class:`~batches.upstream.openai.OpenAIClient`, :class:`~batches.upstream.azure.AzureClient` or
:class:`~batches.upstream.anthropic.AnthropicClient`, all built on the one transport of ``client.py``.
A client is rebuilt only when its project's configuration changes (tests override settings), so
keep-alive connections are reused across page views.
"""

from __future__ import annotations

import dataclasses
import threading

from ..conf import conf

from .anthropic import AnthropicClient
from .azure import AzureClient
from .client import BaseClient
from .openai import OpenAIClient

#: The client class of each provider; each also parses its provider's raw batch (``parse_batch``).
CLIENT_CLASSES: dict[str, type[BaseClient]] = {"openai": OpenAIClient, "azure": AzureClient, "anthropic": AnthropicClient}

_lock = threading.Lock()
_clients: dict[str, tuple[tuple, BaseClient]] = {}


def batch_from_raw(provider: str, raw, *, price_model: str = ""):
    """A batch the index kept as the provider sent it (``BatchRecord.raw``), parsed as its client does."""
    batch = CLIENT_CLASSES.get(provider or "openai", OpenAIClient).parse_batch(raw)
    return dataclasses.replace(batch, price_model=price_model or batch.price_model)


def _build(project) -> BaseClient:
    provider = getattr(project, "provider", "openai") or "openai"
    common = dict(
        base_url=project.base_url,
        api_key=project.api_key or "sk-no-key-configured",
        organization=project.organization or None,
        project=project.project_id or None,
        timeout=conf().openai_timeout,
        connect_timeout=conf().openai_connect_timeout,
        label=project.slug,
    )
    if provider == "azure":
        return AzureClient(api_version=project.api_version, deployments=project.deployments, **common)
    if provider == "anthropic":
        return AnthropicClient(api_version=project.api_version, **common)
    return OpenAIClient(**common)


def client_for(project) -> BaseClient:
    """The process-wide client of ``project`` (a :class:`batches.projects.Project`)."""
    config = (
        getattr(project, "provider", "openai"),
        project.base_url,
        project.api_key,
        project.organization,
        project.project_id,
        getattr(project, "api_version", ""),
        tuple(sorted(getattr(project, "deployments", {}).items())),
        conf().openai_timeout,
        conf().openai_connect_timeout,
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
        client = _build(project)
        _clients[project.slug] = (config, client)
        return client
