"""Azure OpenAI's batch API (shared/provider-specs/NOTES.md Part 2): the OpenAI API with other paths.

Two forms, chosen in the projects file:

* ``api_version`` set: ``base_url`` is the resource's endpoint (``https://{resource}.openai.azure.com``),
  requests go to ``{base_url}/openai/batches`` and ``/openai/files`` with ``?api-version=…`` on every one
  and the key in the ``api-key`` header, as ``AzureOpenAI`` sends them (§2.1, §2.2);
* no ``api_version``: ``base_url`` ends in ``/openai/v1`` and speaks the OpenAI shape with a Bearer key.

The JSONL ``model`` is a deployment name (§2.3); ``deployments`` in the projects file maps it to the
underlying OpenAI model so the batch can be priced. Azure's documented examples show capitalised
statuses, ISO timestamps, null counts and ``""`` file ids (§2.7): the common parser reads them all.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .openai import OpenAIClient
from .types import Batch


class AzureClient(OpenAIClient):
    provider = "azure"

    def __init__(self, *, api_version: str = "", deployments: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        self.api_version = api_version
        self.deployments = dict(deployments or {})
        params = {"api-version": api_version} if api_version else None
        super().__init__(params=params, **kwargs)

    def auth_headers(self, api_key: str, *, organization: str | None, project: str | None) -> dict[str, str]:
        if self.api_version:
            return {"api-key": api_key}
        return {"Authorization": f"Bearer {api_key}"}  # the v1 form takes the key as a Bearer token (§2.1)

    def _path(self, resource: str) -> str:
        return f"openai/{resource}" if self.api_version else resource

    def _batch(self, body: Any) -> Batch:
        batch = self.parse_batch(body)
        return dataclasses.replace(batch, price_model=self.deployments.get(batch.model or "") or None)

    def _create_endpoint(self, endpoint: str) -> str:
        # Azure's docs create with "/chat/completions" and echo it back (§2.3); the lines keep "/v1/…".
        return endpoint.removeprefix("/v1") if endpoint.startswith("/v1/") else endpoint
