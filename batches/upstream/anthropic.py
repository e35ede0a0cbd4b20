"""Anthropic's Message Batches API (shared/provider-specs/NOTES.md Part 1), read into the common types.

* Paths ``/v1/messages/batches…`` under the API root, with the ``anthropic-version`` header and the key
  as ``x-api-key`` (every curl example of the batch docs) and as a Bearer token (what SDK 2.17 sends and
  the newest auth page documents), §1.1.
* List: newest first, ``limit`` 1–1000, ``after_id``/``before_id``; the envelope is ``data``,
  ``has_more``, ``first_id``, ``last_id``; the next page is ``after_id=last_id`` (§1.2).
* The Message Batch (§1.3) has RFC 3339 times, ``processing_status`` ``in_progress`` | ``canceling`` |
  ``ended`` and five counters that stay in ``processing`` until the batch ends. It maps onto the common
  statuses as Part 3 of the notes says; the native status and counters are kept beside them.
* Create takes the requests inline as JSON (§1.4): the body is streamed from the checked file on disk,
  one line at a time, never held in memory.
* Results come from ``results_url`` as JSONL in any order (§1.5) and are turned into the common line
  shape (``lines.py``).
"""

from __future__ import annotations

from typing import IO, Any
from urllib.parse import urlsplit

import httpx

from .client import BaseClient, FileContent, validate_id
from .errors import InvalidId, UpstreamBadResponse, UpstreamNotFound
from .lines import CANCELLED_CODE, EXPIRED_CODE, ResultRecords
from .types import Batch, BatchPage, RequestCounts, _int_or_none, _str_or_none, _time_or_none

#: The version every example of the batch docs sends; the API accepts it and newer ones (§1.1).
ANTHROPIC_VERSION = "2023-06-01"
ENDPOINT = "/v1/messages"
ID_PREFIX = "msgbatch_"
LIST_LIMIT_MAX = 1000
NATIVE_COUNTERS = ("processing", "succeeded", "errored", "canceled", "expired")
#: HTTP statuses of the error types an ``errored`` line carries (§1.7), for the results table.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def validate_batch_id(value: str) -> str:
    """An Anthropic batch id (``msgbatch_…``) made safe for a path, or :class:`InvalidId`."""
    if not isinstance(value, str) or not value.startswith(ID_PREFIX):
        raise InvalidId(
            f"“{str(value)[:80]}” is not an Anthropic message batch id (they start with {ID_PREFIX}), so there is no such batch."
        )
    return validate_id(value)


def _common_status(status: str, cancel_initiated: bool, expired: int) -> str:
    """Part 3 of the notes: ``canceling`` is the transient cancelling state; ``ended`` is cancelled when
    a cancel was asked for, expired when requests expired, else completed."""
    if status == "in_progress":
        return "in_progress"
    if status == "canceling":
        return "cancelling"
    if status == "ended":
        if cancel_initiated:
            return "cancelled"
        return "expired" if expired else "completed"
    return status or "unknown"


def batch_from_anthropic(data: Any) -> Batch:
    if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
        raise UpstreamBadResponse("The Message Batches API sent a batch without an id.")
    raw_counts = data.get("request_counts")
    raw_counts = raw_counts if isinstance(raw_counts, dict) else {}
    native = tuple((name, _int_or_none(raw_counts.get(name)) or 0) for name in NATIVE_COUNTERS)
    counts = dict(native)
    native_status = _str_or_none(data.get("processing_status"))
    cancel_initiated_at = _time_or_none(data.get("cancel_initiated_at"))
    status = _common_status((native_status or "").strip().lower(), cancel_initiated_at is not None, counts["expired"])
    created_at = _time_or_none(data.get("created_at"))
    ended_at = _time_or_none(data.get("ended_at"))
    ends = {f"{status}_at": ended_at} if status in ("completed", "cancelled", "expired") else {}
    return Batch(
        id=data["id"],
        status=status,
        endpoint=ENDPOINT,
        created_at=created_at,
        in_progress_at=created_at,  # there is no validating phase: a batch starts in_progress (§1.2)
        expires_at=_time_or_none(data.get("expires_at")),
        cancelling_at=cancel_initiated_at,
        request_counts=RequestCounts(
            total=sum(counts.values()), completed=counts["succeeded"], failed=counts["errored"]
        ) if raw_counts else None,
        provider="anthropic",
        provider_status=native_status,
        native_counts=native if raw_counts else (),
        counts_live=False,
        results_url=_str_or_none(data.get("results_url")) or None,
        raw=data,
        **ends,
    )


def page_from_anthropic(body: Any) -> BatchPage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise UpstreamBadResponse("The Message Batches API sent a list of batches in a shape the dashboard does not know.")
    data = tuple(batch_from_anthropic(item) for item in body["data"])
    last_id = _str_or_none(body.get("last_id"))
    return BatchPage(
        data=data,
        has_more=body.get("has_more") is True,
        first_id=_str_or_none(body.get("first_id")),
        last_id=last_id,
        cursor=last_id,  # the SDK pages with after_id=last_id (§1.2)
    )


def result_record(line: dict) -> dict:
    """One Anthropic results line in the common shape (``lines.py``)."""
    custom_id = line.get("custom_id")
    result = line.get("result") if isinstance(line.get("result"), dict) else {}
    kind = _str_or_none(result.get("type")) or "unknown"
    record: dict[str, Any] = {"custom_id": custom_id, "response": None, "error": None, "result_type": kind}
    if kind == "succeeded":
        record["response"] = {"status_code": 200, "body": result.get("message")}
    elif kind == "errored":
        envelope = result.get("error") if isinstance(result.get("error"), dict) else {}
        inner = envelope.get("error") if isinstance(envelope.get("error"), dict) else envelope
        error_type = _str_or_none(inner.get("type")) or "error"
        record["response"] = {"status_code": ERROR_STATUS.get(error_type, 500), "body": {"error": inner}}
    elif kind == "canceled":
        record["error"] = {"code": CANCELLED_CODE, "message": "The batch was cancelled before this request ran."}
    elif kind == "expired":
        record["error"] = {"code": EXPIRED_CODE, "message": "This request was not run before the batch expired (24 hours)."}
    else:
        record["error"] = {"code": kind, "message": f"Anthropic reported a result of type “{kind}”, which the dashboard does not know."}
    return record


class InlineRequests:
    """The create body ``{"requests": [line, line, …]}`` streamed from a checked JSONL file: re-iterable
    (a retry of a connection that never opened starts again from the top) and of known length, so it
    goes with a ``Content-Length`` rather than chunked."""

    PREFIX, SEPARATOR, SUFFIX = b'{"requests":[', b",", b"]}"

    def __init__(self, fileobj: IO[bytes]) -> None:
        self._file = fileobj
        count = size = 0
        for line in self._lines():
            count += 1
            size += len(line)
        self.count = count
        self.length = len(self.PREFIX) + size + max(count - 1, 0) + len(self.SUFFIX)

    def _lines(self):
        self._file.seek(0)
        for raw in self._file:
            line = raw.strip()
            if line:
                yield line

    def __iter__(self):
        yield self.PREFIX
        for index, line in enumerate(self._lines()):
            yield (self.SEPARATOR + line) if index else line
        yield self.SUFFIX


class AnthropicClient(BaseClient):
    provider = "anthropic"
    uploads_files = False
    list_limit_max = LIST_LIMIT_MAX

    def __init__(self, *, base_url: str, api_version: str = "", **kwargs: Any) -> None:
        self.anthropic_version = api_version or ANTHROPIC_VERSION
        # The paths carry /v1 themselves: a base URL given as ".../v1" means the same root.
        super().__init__(base_url=base_url.rstrip("/").removesuffix("/v1"), **kwargs)

    parse_batch = staticmethod(batch_from_anthropic)

    def auth_headers(self, api_key: str, *, organization: str | None, project: str | None) -> dict[str, str]:
        return {"x-api-key": api_key, "Authorization": f"Bearer {api_key}", "anthropic-version": self.anthropic_version}

    def list_batches(self, *, after: str | None = None, limit: int = 20, before: str | None = None) -> BatchPage:
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit must be between 1 and {LIST_LIMIT_MAX}")
        params: dict[str, Any] = {"limit": limit}
        for name, value in (("after_id", after), ("before_id", before)):
            if value:
                validate_batch_id(value)
                params[name] = value
        return self._get_json("v1/messages/batches", "list of batches", page_from_anthropic, params=params)

    def list_page(self, *, after: str | None = None, limit: int = 100) -> BatchPage:
        return self.list_batches(after=after, limit=limit)

    def retrieve_batch(self, batch_id: str) -> Batch:
        return self._get_json(f"v1/messages/batches/{validate_batch_id(batch_id)}", "batch lookup", batch_from_anthropic)

    def cancel_batch(self, batch_id: str) -> Batch:
        path = f"v1/messages/batches/{validate_batch_id(batch_id)}/cancel"
        response = self._send("POST", path, retry="connect", what="cancel")
        return self._json(response, batch_from_anthropic)

    def create_batch_inline(self, fileobj: IO[bytes], *, upload_timeout: float = 600.0) -> Batch:
        """Create a batch from a checked JSONL file of ``{"custom_id", "params"}`` lines."""
        body = InlineRequests(fileobj)
        response = self._send(
            "POST",
            "v1/messages/batches",
            retry="connect",
            what="new batch",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(body.length)},
            timeout=httpx.Timeout(upload_timeout, connect=self.timeout.connect),
        )
        return self._json(response, batch_from_anthropic)

    # -- results -------------------------------------------------------------

    def _results_path(self, batch: Batch) -> str:
        """The batch's ``results_url`` as a path on this client's base URL. The key is never sent to
        another origin: a URL on another host is read from ours when its path is the documented one,
        else refused."""
        if not batch.results_url:
            raise UpstreamNotFound(
                "This batch has no results yet: Anthropic gives them once every request has finished (the batch has ended)."
            )
        url, base = urlsplit(batch.results_url), urlsplit(self.base_url)
        expected = f"/v1/messages/batches/{validate_batch_id(batch.id)}/results"
        path = url.path
        if (url.scheme, url.netloc) == (base.scheme, base.netloc) and path.startswith(base.path.rstrip("/") + "/"):
            path = path[len(base.path.rstrip("/")) + 1 :]
        elif path == expected:
            path = expected.lstrip("/")
        else:
            raise UpstreamBadResponse(
                "The batch's results_url points somewhere the dashboard will not send the project's key."
            )
        return path + (f"?{url.query}" if url.query else "")

    def open_results(self, batch: Batch, *, read_timeout: float = 120.0) -> FileContent:
        return self._open_stream(self._results_path(batch), "results download", read_timeout=read_timeout)

    def result_records(self, batch: Batch) -> ResultRecords:
        self._results_path(batch)  # refuse before anything streams
        return ResultRecords([(f"results of {batch.id}", lambda: self.open_results(batch))], convert=result_record)

    # -- no files --------------------------------------------------------------

    def _no_files(self, *args, **kwargs):
        raise UpstreamNotFound("Anthropic's Message Batches have no files: requests go inline and results come from the batch.")

    upload_file = retrieve_file = open_file_content = _no_files
