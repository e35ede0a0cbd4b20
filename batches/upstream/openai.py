"""The OpenAI Batch and Files API (shared/openai-spec/NOTES.md): batches are created from an uploaded
JSONL file, listed with an ``after`` cursor, and their results are output and error files.

Azure OpenAI speaks the same API (``azure.py`` changes only the paths, the key header and the
``endpoint`` it sends), so this class holds everything both share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import IO, Any

import httpx
import orjson

from ..cache import LocalCache
from .client import BaseClient, FileContent, validate_id
from .errors import UpstreamNotFound
from .lines import ResultRecords
from .types import Batch, BatchPage, FileObject

#: Batches of list pages by their JSON (a Batch is frozen and shared: nothing may change it).
PARSED_BATCHES: LocalCache[tuple, Batch] = LocalCache(maxsize=4000)

LIST_LIMIT_MAX = 100  # NOTES.md §1.2: "Limit can range between 1 and 100"


class OpenAIClient(BaseClient):
    """Typed access to the OpenAI Batch and Files API over the shared transport."""

    provider = "openai"
    #: Batches are created from an uploaded input file (not from requests sent inline).
    uploads_files = True
    list_limit_max = LIST_LIMIT_MAX

    def auth_headers(self, api_key: str, *, organization: str | None, project: str | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {api_key}"}
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        return headers

    # -- paths and parsing that Azure changes --------------------------------------------------

    def _path(self, resource: str) -> str:
        return resource

    @classmethod
    def parse_batch(cls, body: Any) -> Batch:
        """A batch object of this provider as kept by the index (no client state needed)."""
        return Batch.from_api(body, provider=cls.provider)

    def _batch(self, body: Any) -> Batch:
        return self.parse_batch(body)

    def _page(self, body: Any) -> BatchPage:
        return BatchPage.from_openai(body, self._page_batch)

    def _page_batch(self, body: Any) -> Batch:
        """A batch of a list page, parsed once per content in this process: a list polled every few
        seconds is mostly the batches it was last time (the key is the object's JSON as sent)."""
        try:
            key = (type(self), orjson.dumps(body))
        except TypeError:
            return self._batch(body)
        return PARSED_BATCHES.get_or_make(key, lambda: self._batch(body))

    def _create_endpoint(self, endpoint: str) -> str:
        return endpoint

    # -- batches -------------------------------------------------------------

    def list_batches(self, *, after: str | None = None, limit: int = 20) -> BatchPage:
        if not 1 <= limit <= self.list_limit_max:
            raise ValueError(f"limit must be between 1 and {self.list_limit_max}")
        params: dict[str, Any] = {"limit": limit}
        if after:
            validate_id(after)
            params["after"] = after
        return self._get_json(self._path("batches"), "list of batches", self._page, params=params)

    def list_page(self, *, after: str | None = None, limit: int = LIST_LIMIT_MAX) -> BatchPage:
        """The uniform paging call of every client: a page, newest first, and its ``next_cursor``."""
        return self.list_batches(after=after, limit=limit)

    def retrieve_batch(self, batch_id: str) -> Batch:
        path = self._path(f"batches/{validate_id(batch_id)}")
        return self._get_json(path, "batch lookup", self._batch)

    def cancel_batch(self, batch_id: str) -> Batch:
        path = self._path(f"batches/{validate_id(batch_id)}/cancel")
        response = self._send("POST", path, retry="connect", what="cancel")
        return self._json(response, self._batch)

    def create_batch(
        self,
        *,
        input_file_id: str,
        endpoint: str,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        output_expires_after_seconds: int | None = None,
    ) -> Batch:
        validate_id(input_file_id, "file")
        payload: dict[str, Any] = {
            "input_file_id": input_file_id,
            "endpoint": self._create_endpoint(endpoint),
            "completion_window": completion_window,
        }
        if metadata:
            payload["metadata"] = dict(metadata)
        if output_expires_after_seconds is not None:
            payload["output_expires_after"] = {"anchor": "created_at", "seconds": int(output_expires_after_seconds)}
        response = self._send("POST", self._path("batches"), retry="connect", what="new batch", json=payload)
        return self._json(response, self._batch)

    # -- results -------------------------------------------------------------

    def result_records(self, batch: Batch) -> ResultRecords:
        """The output file's lines, then the error file's (already the common shape)."""
        sources = [
            (f"file {file_id}", lambda file_id=file_id: self.open_file_content(file_id))
            for file_id in (batch.output_file_id, batch.error_file_id)
            if file_id
        ]
        return ResultRecords(sources)

    def open_results(self, batch: Batch, *, read_timeout: float = 120.0) -> FileContent:
        raise UpstreamNotFound("This batch keeps its results in its output and error files.")

    # -- files ---------------------------------------------------------------

    def upload_file(self, fileobj: IO[bytes], filename: str, *, purpose: str = "batch", upload_timeout: float = 600.0) -> FileObject:
        """Upload ``fileobj`` as multipart/form-data; httpx streams it from disk in chunks."""
        timeout = httpx.Timeout(upload_timeout, connect=self.timeout.connect)
        response = self._send(
            "POST",
            self._path("files"),
            retry="never",
            what="file upload",
            files={"file": (filename, fileobj, "application/jsonl")},
            data={"purpose": purpose},
            timeout=timeout,
        )
        return self._json(response, FileObject.from_api)

    def retrieve_file(self, file_id: str) -> FileObject:
        path = self._path(f"files/{validate_id(file_id, 'file')}")
        return self._get_json(path, "file lookup", FileObject.from_api)

    def open_file_content(self, file_id: str, *, read_timeout: float = 120.0) -> FileContent:
        """Start streaming a file's bytes. The caller must iterate or ``close()`` the result."""
        path = self._path(f"files/{validate_id(file_id, 'file')}/content")
        return self._open_stream(path, "file download", read_timeout=read_timeout)


#: The name the rest of the code (and the tests) have always used for the OpenAI client.
BatchClient = OpenAIClient
