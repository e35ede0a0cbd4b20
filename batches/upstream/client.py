"""Transport and retries: the one seam to the upstream Batch and Files API.

Every HTTP request to an OpenAI-compatible upstream goes through :class:`BaseClient`. Each project has one
pooled ``httpx.Client`` per process (``registry.py``) (keep-alive is reused across page views), sends the bearer key and
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

import dataclasses
import logging
import random
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from .errors import (
    InvalidId,
    UpstreamBadResponse,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
    error_from_response,
    request_id_of,
)
from ..metrics import record_upstream, record_upstream_retry
from . import breaker
from .types import ID_PATTERN, Batch, FileObject

logger = logging.getLogger("batches.client")

USER_AGENT = "batch-dashboard/1.0 (+django; httpx)"
MAX_RETRIES = 2
RETRY_BUDGET_SECONDS = 4.0
BACKOFF_INITIAL_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 2.0
# 529: Anthropic's overloaded_error (provider-specs/NOTES.md §1.7).
RETRYABLE_READ_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
STREAM_CHUNK_BYTES = 64 * 1024


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



def _connect_failure(err: httpx.TransportError) -> UpstreamError:
    """The request never reached the server."""
    if isinstance(err, (httpx.ConnectTimeout, httpx.PoolTimeout)):
        return UpstreamTimeout("The Batch API could not be reached in time. Try again in a minute.")
    return UpstreamUnavailable("The Batch API could not be reached. Try again in a minute.")


def _log_response(method: str, path: str, response: httpx.Response, elapsed: float, label: str = "") -> None:
    request_id = request_id_of(response)
    record_upstream(label, method, path, response.status_code, elapsed)
    extra = {"upstream_request_id": request_id, "duration_ms": round(elapsed * 1000, 1),
             "upstream_status": response.status_code}
    if response.status_code < 400:
        logger.info("upstream %s %s -> %s in %.0fms request_id=%s", method, path, response.status_code, elapsed * 1000,
                    request_id, extra=extra)
    else:
        logger.warning(
            "upstream %s %s -> %s in %.0fms request_id=%s", method, path, response.status_code, elapsed * 1000, request_id,
            extra=extra,
        )


def _should_retry_status(retry: str, response: httpx.Response) -> bool:
    """Only reads retry an HTTP error, only on the statuses that mean "try later", and never when the
    server says not to (``x-should-retry: false``, NOTES.md §5.3)."""
    if response.headers.get("x-should-retry", "").lower() == "false":
        return False
    return retry == "read" and response.status_code in RETRYABLE_READ_STATUSES


def _should_retry(retry: str, never_sent: bool, attempt: int, max_retries: int) -> bool:
    """Whether a failed attempt may be repeated: a create or cancel only when it never left."""
    if retry == "never" or attempt >= max_retries:
        return False
    return retry == "read" or never_sent


def _retry_delay(error: UpstreamError, attempt: int) -> float:
    """The server's Retry-After when it gave one, else exponential backoff with jitter."""
    if error.retry_after is not None:
        return error.retry_after
    return min(BACKOFF_INITIAL_SECONDS * 2**attempt, BACKOFF_MAX_SECONDS) * (1 - 0.25 * random.random())


class BaseClient:
    """The transport every provider's client shares: one pooled ``httpx.Client``, the retry policy,
    the timeouts, the error mapping and the logging. Subclasses (``openai.py``, ``azure.py``,
    ``anthropic.py``) add the paths, headers and parsing of their API; none of them sends HTTP any
    other way than through :meth:`_send`."""

    #: Which API this client speaks ("openai", "azure", "anthropic"); set by each subclass.
    provider = ""

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
        label: str = "",
        params: Mapping[str, str] | None = None,
    ) -> None:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        headers.update(self.auth_headers(api_key, organization=organization, project=project))
        self.base_url = base_url.rstrip("/")
        # The project slug in metrics (dashboard_upstream_*{project=...}); set by the registry.
        self.label = label
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
            params=params,
        )

    def auth_headers(self, api_key: str, *, organization: str | None, project: str | None) -> dict[str, str]:
        """The headers that authenticate every request (the key is never logged)."""
        raise NotImplementedError

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
        request never reached the server) or "never". It goes through the project's breaker
        (``breaker.py``): refused at once while the breaker is open, and a page read gets the page's
        short deadline."""
        attempts = lambda: self._attempts(method, path, retry, what, stream, kwargs)  # noqa: E731
        return breaker.send(self.label or self.base_url, attempts)

    def _attempts(self, method: str, path: str, retry: str, what: str, stream: bool, kwargs: dict) -> httpx.Response:
        attempt = 0
        budget = self.retry_budget
        while True:
            started = time.monotonic()
            try:
                request = self._http.build_request(method, path, **breaker.clamp(kwargs, self.timeout))
                response = self._http.send(request, stream=stream)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as err:
                record_upstream(self.label, method, path, "unreachable", time.monotonic() - started)
                error, never_sent, cause = _connect_failure(err), True, err
            except httpx.TimeoutException as err:
                record_upstream(self.label, method, path, "timeout", time.monotonic() - started)
                logger.warning("upstream %s %s timed out after %.2fs", method, path, time.monotonic() - started)
                raise UpstreamTimeout(f"The Batch API did not answer the {what} in time. Try again in a minute.") from err
            except (httpx.TransportError, httpx.DecodingError) as err:
                # Reset mid-request, protocol error: the request may have been seen upstream.
                record_upstream(self.label, method, path, "broken", time.monotonic() - started)
                error = UpstreamUnavailable("The connection to the Batch API broke before it answered. Try again in a minute.")
                never_sent, cause = False, err
            else:
                _log_response(method, path, response, time.monotonic() - started, self.label)
                if response.status_code < 400:
                    return response
                if stream:
                    response.read()
                error, never_sent, cause = error_from_response(response, what), False, None
                if not _should_retry_status(retry, response):
                    raise error
            if not _should_retry(retry, never_sent, attempt, self.max_retries):
                raise error from cause
            delay = _retry_delay(error, attempt)
            if delay > budget:
                raise error from cause
            budget -= delay
            attempt += 1
            record_upstream_retry(self.label, method, path)
            logger.info("upstream %s %s retry %d in %.2fs", method, path, attempt, delay)
            self._sleep(delay)

    def _json(self, response: httpx.Response, parse=None) -> Any:
        """The JSON body, passed through ``parse`` (e.g. ``Batch.from_api``) when given. A shape error
        carries the response's status and request id, so the log line can quote it to support."""
        try:
            # orjson: a list page of 100 batches parses in a quarter of the time json takes.
            body = orjson.loads(response.content)
        except (ValueError, UnicodeDecodeError) as err:
            raise UpstreamBadResponse(
                "The Batch API sent an answer the dashboard could not read (not valid JSON).",
                status_code=response.status_code,
                request_id=request_id_of(response),
            ) from err
        if parse is None:
            return body
        try:
            value = parse(body)
        except UpstreamBadResponse as err:
            err.status_code = err.status_code or response.status_code
            err.request_id = err.request_id or request_id_of(response)
            raise
        if isinstance(value, (Batch, FileObject)):
            value = dataclasses.replace(
                value, http_status=response.status_code, request_id=request_id_of(response)
            )
        return value

    def _open_stream(self, path: str, what: str, *, read_timeout: float) -> FileContent:
        """Start streaming a body (a file, a results file); the caller iterates or closes it."""
        response = self._send(
            "GET",
            path,
            retry="read",
            what=what,
            stream=True,
            headers={"Accept": "application/binary"},  # what the official SDKs send for file bodies
            timeout=httpx.Timeout(read_timeout, connect=self.timeout.connect),
        )
        return FileContent(response)

    def _get_json(self, path: str, what: str, parse=None, **kwargs: Any) -> Any:
        response = self._send("GET", path, retry="read", what=what, **kwargs)
        return self._json(response, parse)

