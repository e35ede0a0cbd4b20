"""The one seam to the upstream Batch and Files API.

Every HTTP request to an OpenAI-compatible upstream goes through :class:`BatchClient`. It keeps one
pooled ``httpx.Client`` per process (keep-alive is reused across page views), sends the bearer key and
the optional ``OpenAI-Organization`` / ``OpenAI-Project`` headers, returns typed values and raises only
the :class:`UpstreamError` family, whose messages are sentences fit for a page.

Retry policy (the official SDKs retry at most twice with exponential backoff and honour
``retry-after-ms`` / ``retry-after``; see shared/openai-spec/NOTES.md §5.3). Ours differs where a
dashboard must answer within a bounded time or must not repeat a side effect:

* **Reads (GET)** retry on connection errors (refused, reset, connect timeout) and on HTTP 429, 500,
  502, 503 and 504, at most :data:`MAX_RETRIES` (2) times. The delay is ``retry-after-ms``, else
  ``retry-after`` (seconds or an HTTP date), else backoff ``0.25 * 2**n`` seconds with jitter. All sleeps
  of one call share a budget of :data:`RETRY_BUDGET_SECONDS`: when the next delay would exceed what is
  left, the error is raised at once (with its ``retry_after``) instead of keeping a page waiting. An
  ``x-should-retry: false`` header is obeyed. A *read* timeout is not retried: the page already waited
  a full timeout.
* **Cancel (POST …/cancel)** retries only when the request never reached the server (connect error or
  connect timeout). A 409 is never retried: it means the batch already finished (NOTES.md §4.3).
* **Create (POST /batches)** likewise retries only when the connection could not be made; once the
  request may have been sent it is never repeated, because the API has no idempotency key and a retry
  could create a second batch (NOTES.md §5.3).
* **File upload** is never retried (the body is a stream from disk).

Path parameters (batch and file ids) are validated against :data:`ID_PATTERN` and URL-encoded before
they are put into an upstream URL, so no input can make the dashboard call another endpoint.
The API key is never logged and never put into an error message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import quote

import httpx

logger = logging.getLogger(__name__)

USER_AGENT = "batch-dashboard/1.0 (+django; httpx)"
MAX_RETRIES = 2
RETRY_BUDGET_SECONDS = 4.0
BACKOFF_INITIAL_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 2.0
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504})
STREAM_CHUNK_BYTES = 64 * 1024

# IDs are opaque (NOTES.md §7): we only insist on a safe character set and a bounded length. The first
# character must be alphanumeric, so "." and ".." can never form a path segment.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:~+=@\-]{0,199}")

TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
CANCELLABLE_STATUSES = frozenset({"validating", "in_progress", "finalizing"})
KNOWN_STATUSES = frozenset(
    {"validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"}
)
# CreateBatchRequest.endpoint enum (spec); the list grows over time, so reading never rejects others.
ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
COMPLETION_WINDOWS = ("24h",)


# ---------------------------------------------------------------------------
# Errors: one family, messages are sentences a person can act on
# ---------------------------------------------------------------------------


class UpstreamError(Exception):
    """Something went wrong talking to the Batch API. ``str(err)`` is fit for the page."""

    default_message = "The Batch API returned an error."
    #: The HTTP status the dashboard answers with when this error ends a page view.
    http_status = 502

    def __init__(
        self,
        message: str | None = None,
        *,
        status_code: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        param: str | None = None,
        retry_after: float | None = None,
        upstream_message: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.status_code = status_code
        self.request_id = request_id
        self.code = code
        self.param = param
        self.retry_after = retry_after
        self.upstream_message = upstream_message
        super().__init__(self.message)


class UpstreamUnavailable(UpstreamError):
    default_message = "The Batch API is unavailable right now. Try again in a minute."
    http_status = 503


class UpstreamTimeout(UpstreamError):
    default_message = "The Batch API did not answer in time. Try again in a minute."
    http_status = 504


class UpstreamAuthError(UpstreamError):
    default_message = (
        "The Batch API rejected the dashboard's API key. An administrator needs to check OPENAI_API_KEY."
    )
    http_status = 502


class UpstreamForbidden(UpstreamError):
    default_message = "The Batch API refused this request: the dashboard's key lacks permission for it."
    http_status = 403


class UpstreamNotFound(UpstreamError):
    default_message = "The Batch API has no such object."
    http_status = 404


class InvalidId(UpstreamNotFound):
    """An id that can not be a real id. Raised before any request is sent."""

    default_message = "That is not a valid id, so there is nothing to show."


class UpstreamConflict(UpstreamError):
    default_message = "The Batch API refused: the batch is not in a state that allows this."
    http_status = 409


class UpstreamRateLimited(UpstreamError):
    default_message = "The Batch API is rate limiting the dashboard. Try again shortly."
    http_status = 429


class UpstreamBadRequest(UpstreamError):
    default_message = "The Batch API rejected the request as invalid."
    http_status = 400


class UpstreamBadResponse(UpstreamError):
    default_message = "The Batch API sent an answer the dashboard could not read."
    http_status = 502


# ---------------------------------------------------------------------------
# Typed values (tolerant: every optional field may be absent or null)
# ---------------------------------------------------------------------------


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True)
class RequestCounts:
    total: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def done(self) -> int:
        return self.completed + self.failed

    @property
    def pending(self) -> int:
        return max(self.total - self.done, 0)

    def _pct(self, part: int) -> float:
        return round(100.0 * part / self.total, 1) if self.total > 0 else 0.0

    @property
    def completed_pct(self) -> float:
        return self._pct(self.completed)

    @property
    def failed_pct(self) -> float:
        return self._pct(self.failed)

    @property
    def done_pct(self) -> float:
        return self._pct(self.done)


@dataclass(frozen=True)
class BatchError:
    code: str | None = None
    message: str | None = None
    param: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Usage:
    input_tokens: int | None = None
    cached_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None
    total_tokens: int | None = None


STATUS_TIMESTAMPS = (
    ("created", "created_at"),
    ("in progress", "in_progress_at"),
    ("finalizing", "finalizing_at"),
    ("completed", "completed_at"),
    ("failed", "failed_at"),
    ("cancelling", "cancelling_at"),
    ("cancelled", "cancelled_at"),
    ("expired", "expired_at"),
)


@dataclass(frozen=True)
class Batch:
    id: str
    status: str
    endpoint: str = ""
    input_file_id: str | None = None
    completion_window: str | None = None
    created_at: int | None = None
    model: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts | None = None
    errors: tuple[BatchError, ...] = ()
    usage: Usage | None = None
    metadata: dict[str, str] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_linkable(self) -> bool:
        """Whether the dashboard can put this id into its own URLs and the upstream's. An id outside
        the safe set (a "/" would even break URL reversing) is still shown, as text, never dropped:
        nothing is silently lost from a page (IDs are opaque, NOTES.md §7)."""
        return bool(ID_PATTERN.fullmatch(self.id))

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def can_cancel(self) -> bool:
        return self.status in CANCELLABLE_STATUSES

    @property
    def is_known_status(self) -> bool:
        return self.status in KNOWN_STATUSES

    @property
    def description(self) -> str | None:
        return (self.metadata or {}).get("description")

    @property
    def timeline(self) -> list[tuple[str, int]]:
        """(label, unix time) of each status timestamp the upstream gave, oldest first."""
        events = [(label, getattr(self, attr)) for label, attr in STATUS_TIMESTAMPS]
        return sorted(((label, ts) for label, ts in events if ts is not None), key=lambda item: item[1])

    @property
    def has_failures(self) -> bool:
        return bool(self.request_counts and self.request_counts.failed)

    @property
    def all_failed(self) -> bool:
        counts = self.request_counts
        return bool(counts and counts.total and counts.failed >= counts.total)

    @classmethod
    def from_api(cls, data: Any) -> Batch:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise UpstreamBadResponse("The Batch API sent a batch without an id.")
        counts = data.get("request_counts")
        request_counts = None
        if isinstance(counts, dict):
            request_counts = RequestCounts(
                total=_int_or_none(counts.get("total")) or 0,
                completed=_int_or_none(counts.get("completed")) or 0,
                failed=_int_or_none(counts.get("failed")) or 0,
            )
        errors: list[BatchError] = []
        raw_errors = data.get("errors")
        if isinstance(raw_errors, dict) and isinstance(raw_errors.get("data"), list):
            for item in raw_errors["data"]:
                if isinstance(item, dict):
                    errors.append(
                        BatchError(
                            code=_str_or_none(item.get("code")),
                            message=_str_or_none(item.get("message")),
                            param=_str_or_none(item.get("param")),
                            line=_int_or_none(item.get("line")),
                        )
                    )
        usage = None
        raw_usage = data.get("usage")
        if isinstance(raw_usage, dict):
            in_details = raw_usage.get("input_tokens_details")
            out_details = raw_usage.get("output_tokens_details")
            usage = Usage(
                input_tokens=_int_or_none(raw_usage.get("input_tokens")),
                cached_tokens=_int_or_none(in_details.get("cached_tokens")) if isinstance(in_details, dict) else None,
                output_tokens=_int_or_none(raw_usage.get("output_tokens")),
                reasoning_tokens=(
                    _int_or_none(out_details.get("reasoning_tokens")) if isinstance(out_details, dict) else None
                ),
                total_tokens=_int_or_none(raw_usage.get("total_tokens")),
            )
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            metadata = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
        else:
            metadata = None
        return cls(
            id=data["id"],
            status=_str_or_none(data.get("status")) or "unknown",
            endpoint=_str_or_none(data.get("endpoint")) or "",
            input_file_id=_str_or_none(data.get("input_file_id")),
            completion_window=_str_or_none(data.get("completion_window")),
            created_at=_int_or_none(data.get("created_at")),
            model=_str_or_none(data.get("model")),
            output_file_id=_str_or_none(data.get("output_file_id")),
            error_file_id=_str_or_none(data.get("error_file_id")),
            in_progress_at=_int_or_none(data.get("in_progress_at")),
            expires_at=_int_or_none(data.get("expires_at")),
            finalizing_at=_int_or_none(data.get("finalizing_at")),
            completed_at=_int_or_none(data.get("completed_at")),
            failed_at=_int_or_none(data.get("failed_at")),
            expired_at=_int_or_none(data.get("expired_at")),
            cancelling_at=_int_or_none(data.get("cancelling_at")),
            cancelled_at=_int_or_none(data.get("cancelled_at")),
            request_counts=request_counts,
            errors=tuple(errors),
            usage=usage,
            metadata=metadata,
            raw=data,
        )


@dataclass(frozen=True)
class BatchPage:
    data: tuple[Batch, ...]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None

    @property
    def next_after(self) -> str | None:
        """The cursor for the next page: the id of the last item of ``data``, as the official SDKs do
        (NOTES.md §3), not ``last_id``, which may be absent."""
        if not self.has_more or not self.data:
            return None
        return self.data[-1].id


@dataclass(frozen=True)
class FileObject:
    id: str
    bytes: int | None = None
    created_at: int | None = None
    filename: str | None = None
    purpose: str | None = None
    status: str | None = None
    expires_at: int | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_api(cls, data: Any) -> FileObject:
        if not isinstance(data, dict) or not isinstance(data.get("id"), str) or not data["id"]:
            raise UpstreamBadResponse("The Files API sent a file without an id.")
        return cls(
            id=data["id"],
            bytes=_int_or_none(data.get("bytes")),
            created_at=_int_or_none(data.get("created_at")),
            filename=_str_or_none(data.get("filename")),
            purpose=_str_or_none(data.get("purpose")),
            status=_str_or_none(data.get("status")),
            expires_at=_int_or_none(data.get("expires_at")),
            raw=data,
        )


class FileContent:
    """A streamed file body: iterate it for chunks; ``close()`` releases the connection.

    Django's ``StreamingHttpResponse`` calls ``close()`` when the response is done, so the upstream
    connection goes back to the pool whether the browser read everything or went away.
    """

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        length = response.headers.get("content-length")
        self.content_length = int(length) if length and length.isdigit() else None
        self.content_type = response.headers.get("content-type") or "application/octet-stream"

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._response.iter_raw(STREAM_CHUNK_BYTES)
        except httpx.HTTPError as err:
            # Headers were sent already; all we can do is end the body early and log why.
            logger.warning("upstream file stream broke: %s", type(err).__name__)
            raise
        finally:
            self._response.close()

    def iter_lines(self) -> Iterator[str]:
        try:
            yield from self._response.iter_lines()
        finally:
            self._response.close()

    def close(self) -> None:
        self._response.close()


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


def validate_id(value: str, kind: str = "batch") -> str:
    """Return ``value`` URL-encoded for a path segment, or raise :class:`InvalidId`."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise InvalidId(f"“{str(value)[:80]}” is not a valid {kind} id, so there is no such {kind}.")
    # Every character ID_PATTERN admits is legal in a path segment as it is (RFC 3986 pchar), so the
    # id goes upstream unchanged; quote() still guards the one segment.
    return quote(value, safe=":@+=")


def _parse_retry_after(headers: httpx.Headers) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def _error_details(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) from an OpenAI error body, tolerating anything else (an HTML gateway
    page, empty body, truncated JSON)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError, httpx.HTTPError):
        return None, None, None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None, None
    return _str_or_none(err.get("message")), _str_or_none(err.get("code")), _str_or_none(err.get("param"))


def _retry_phrase(seconds: float | None) -> str:
    if seconds is None:
        return "Try again shortly."
    if seconds < 1:
        return "Try again in a second."
    return f"Try again in {int(seconds + 0.999)} seconds."


def error_from_response(response: httpx.Response, what: str = "request") -> UpstreamError:
    status = response.status_code
    request_id = response.headers.get("x-request-id")
    message, code, param = _error_details(response)
    retry_after = _parse_retry_after(response.headers)
    kwargs = dict(status_code=status, request_id=request_id, code=code, param=param, upstream_message=message)
    detail = f" The API said: “{message}”" if message else ""
    if status == 400 or status == 422:
        return UpstreamBadRequest(f"The Batch API rejected the {what}.{detail}", **kwargs)
    if status == 401:
        return UpstreamAuthError(**kwargs)
    if status == 403:
        return UpstreamForbidden(f"The Batch API refused the {what}: the key lacks permission.{detail}", **kwargs)
    if status == 404:
        return UpstreamNotFound(f"The Batch API has no such object.{detail}", **kwargs)
    if status == 409:
        return UpstreamConflict(f"The Batch API refused the {what}.{detail}", **kwargs)
    if status == 429:
        return UpstreamRateLimited(
            f"The Batch API is rate limiting the dashboard. {_retry_phrase(retry_after)}",
            retry_after=retry_after,
            **kwargs,
        )
    if status >= 500:
        return UpstreamUnavailable(
            f"The Batch API failed with an error ({status}). Try again in a minute.",
            retry_after=retry_after,
            **kwargs,
        )
    return UpstreamBadRequest(f"The Batch API answered the {what} with an unexpected status {status}.{detail}", **kwargs)


class BatchClient:
    """Typed access to the Batch and Files API over one pooled ``httpx.Client``."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        organization: str | None = None,
        project: str | None = None,
        timeout: float = 15.0,
        connect_timeout: float = 5.0,
        max_retries: int = MAX_RETRIES,
        retry_budget: float = RETRY_BUDGET_SECONDS,
        transport: httpx.BaseTransport | None = None,
        sleep=time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": USER_AGENT, "Accept": "application/json"}
        if organization:
            headers["OpenAI-Organization"] = organization
        if project:
            headers["OpenAI-Project"] = project
        self.base_url = base_url.rstrip("/")
        self.timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self.max_retries = max_retries
        self.retry_budget = retry_budget
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=self.timeout,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    # -- the single point where HTTP is sent ---------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        retry: str,
        what: str,
        stream: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send one logical request. ``retry`` is "read" (full read policy), "connect" (only when the
        request never reached the server) or "never"."""
        attempt = 0
        budget = self.retry_budget
        while True:
            started = time.monotonic()
            try:
                request = self._http.build_request(method, path, **kwargs)
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
                never_sent = True
                error: UpstreamError = (
                    UpstreamTimeout("The Batch API could not be reached in time. Try again in a minute.")
                    if isinstance(err, (httpx.ConnectTimeout, httpx.PoolTimeout))
                    else UpstreamUnavailable("The Batch API could not be reached. Try again in a minute.")
                )
                delay = None
                cause: Exception = err
            except httpx.TimeoutException as err:
                logger.warning("upstream %s %s timed out after %.2fs", method, path, time.monotonic() - started)
                raise UpstreamTimeout(f"The Batch API did not answer the {what} in time. Try again in a minute.") from err
            except (httpx.TransportError, httpx.DecodingError) as err:
                # Reset mid-request, protocol error: the request may have been seen upstream.
                never_sent = False
                error = UpstreamUnavailable(
                    "The connection to the Batch API broke before it answered. Try again in a minute."
                )
                delay = None
                cause = err
            else:
                elapsed = time.monotonic() - started
                request_id = response.headers.get("x-request-id")
                if response.status_code < 400:
                    logger.info(
                        "upstream %s %s -> %s in %.0fms request_id=%s",
                        method, path, response.status_code, elapsed * 1000, request_id,
                    )
                    return response
                if stream:
                    response.read()
                error = error_from_response(response, what)
                logger.warning(
                    "upstream %s %s -> %s in %.0fms request_id=%s code=%s",
                    method, path, response.status_code, elapsed * 1000, request_id, error.code,
                )
                never_sent = False
                delay = error.retry_after
                cause = None
                should_retry = response.headers.get("x-should-retry", "").lower()
                if retry != "read" or response.status_code not in RETRYABLE_READ_STATUSES or should_retry == "false":
                    raise error
            # A failure that may be retried.
            if retry == "never" or (retry == "connect" and not never_sent) or attempt >= self.max_retries:
                raise error from cause
            if delay is None:
                delay = min(BACKOFF_INITIAL_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS) * (1 - 0.25 * random.random())
            if delay > budget:
                raise error from cause
            budget -= delay
            attempt += 1
            logger.info("upstream %s %s retry %d in %.2fs", method, path, attempt, delay)
            self._sleep(delay)

    def _json(self, response: httpx.Response, parse=None) -> Any:
        """The JSON body, passed through ``parse`` (e.g. ``Batch.from_api``) when given. A shape error
        carries the response's status and request id, so the log line can quote it to support."""
        try:
            body = response.json()
        except (ValueError, UnicodeDecodeError) as err:
            raise UpstreamBadResponse(
                "The Batch API sent an answer the dashboard could not read (not valid JSON).",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from err
        if parse is None:
            return body
        try:
            return parse(body)
        except UpstreamBadResponse as err:
            err.status_code = err.status_code or response.status_code
            err.request_id = err.request_id or response.headers.get("x-request-id")
            raise

    def _get_json(self, path: str, what: str, parse=None, **kwargs: Any) -> Any:
        response = self._send("GET", path, retry="read", what=what, **kwargs)
        return self._json(response, parse)

    # -- batches -------------------------------------------------------------

    def list_batches(self, *, after: str | None = None, limit: int = 20) -> BatchPage:
        if not 1 <= limit <= 100:
            raise ValueError("limit must be between 1 and 100")
        params: dict[str, Any] = {"limit": limit}
        if after:
            validate_id(after)
            params["after"] = after
        return self._get_json("batches", "list of batches", self._page_from_api, params=params)

    @staticmethod
    def _page_from_api(body: Any) -> BatchPage:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise UpstreamBadResponse("The Batch API sent a list of batches in a shape the dashboard does not know.")
        batches = tuple(Batch.from_api(item) for item in body["data"])
        has_more = body.get("has_more")
        return BatchPage(
            data=batches,
            has_more=has_more is True,
            first_id=_str_or_none(body.get("first_id")),
            last_id=_str_or_none(body.get("last_id")),
        )

    def retrieve_batch(self, batch_id: str) -> Batch:
        path = f"batches/{validate_id(batch_id)}"
        return self._get_json(path, "batch lookup", Batch.from_api)

    def cancel_batch(self, batch_id: str) -> Batch:
        path = f"batches/{validate_id(batch_id)}/cancel"
        response = self._send("POST", path, retry="connect", what="cancel")
        return self._json(response, Batch.from_api)

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
            "endpoint": endpoint,
            "completion_window": completion_window,
        }
        if metadata:
            payload["metadata"] = dict(metadata)
        if output_expires_after_seconds is not None:
            payload["output_expires_after"] = {"anchor": "created_at", "seconds": int(output_expires_after_seconds)}
        response = self._send("POST", "batches", retry="connect", what="new batch", json=payload)
        return self._json(response, Batch.from_api)

    # -- files ---------------------------------------------------------------

    def upload_file(self, fileobj: IO[bytes], filename: str, *, purpose: str = "batch", upload_timeout: float = 600.0) -> FileObject:
        """Upload ``fileobj`` as multipart/form-data; httpx streams it from disk in chunks."""
        timeout = httpx.Timeout(upload_timeout, connect=self.timeout.connect)
        response = self._send(
            "POST",
            "files",
            retry="never",
            what="file upload",
            files={"file": (filename, fileobj, "application/jsonl")},
            data={"purpose": purpose},
            timeout=timeout,
        )
        return self._json(response, FileObject.from_api)

    def retrieve_file(self, file_id: str) -> FileObject:
        path = f"files/{validate_id(file_id, 'file')}"
        return self._get_json(path, "file lookup", FileObject.from_api)

    def open_file_content(self, file_id: str, *, read_timeout: float = 120.0) -> FileContent:
        """Start streaming a file's bytes. The caller must iterate or ``close()`` the result."""
        path = f"files/{validate_id(file_id, 'file')}/content"
        response = self._send(
            "GET",
            path,
            retry="read",
            what="file download",
            stream=True,
            headers={"Accept": "application/binary"},
            timeout=httpx.Timeout(read_timeout, connect=self.timeout.connect),
        )
        return FileContent(response)


# ---------------------------------------------------------------------------
# One client per process, built from settings
# ---------------------------------------------------------------------------

_client_lock = threading.Lock()
_client: BatchClient | None = None
_client_config: tuple | None = None


def get_client() -> BatchClient:
    """The process-wide client. Rebuilt only if the upstream settings change (tests override them)."""
    global _client, _client_config
    from django.conf import settings

    config = (
        settings.OPENAI_BASE_URL,
        settings.OPENAI_API_KEY,
        settings.OPENAI_ORG_ID,
        settings.OPENAI_PROJECT_ID,
        settings.OPENAI_TIMEOUT,
        settings.OPENAI_CONNECT_TIMEOUT,
    )
    client = _client
    if client is not None and _client_config == config:
        return client
    with _client_lock:
        if _client is None or _client_config != config:
            if _client is not None:
                _client.close()
            _client = BatchClient(
                base_url=settings.OPENAI_BASE_URL,
                api_key=settings.OPENAI_API_KEY or "sk-no-key-configured",
                organization=settings.OPENAI_ORG_ID or None,
                project=settings.OPENAI_PROJECT_ID or None,
                timeout=settings.OPENAI_TIMEOUT,
                connect_timeout=settings.OPENAI_CONNECT_TIMEOUT,
            )
            _client_config = config
        return _client
