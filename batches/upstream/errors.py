"""The one error family of the upstream client.

Each class carries what a page needs next to its message: the HTTP status the dashboard answers with
(``http_status``) and the second sentence of the page, what the operator can do about it (``hint``).
Messages are sentences fit for a page; the upstream status, ``x-request-id``, code and Retry-After
travel with the error for the log line and the response headers. The API key is never part of one.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import Any

import httpx


class UpstreamError(Exception):
    """Something went wrong talking to the Batch API. ``str(err)`` is fit for the page."""

    default_message = "The Batch API returned an error."
    #: The HTTP status the dashboard answers with when this error ends a page view.
    http_status = 502
    default_hint = "Try again in a minute. If it keeps happening, quote the request id below to OpenAI support."

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

    @property
    def hint(self) -> str:
        """What the operator can do about it: the second sentence of every error page."""
        return self.default_hint

    @property
    def retry_after_header(self) -> str | None:
        """The ``Retry-After`` value to pass on (whole seconds, rounded up), or None."""
        return retry_after_seconds(self.retry_after)


def retry_after_seconds(seconds: float | None) -> str | None:
    """A Retry-After delay as the whole number of seconds a person or client should wait (rounded up)."""
    if seconds is None:
        return None
    return str(max(int(math.ceil(seconds)), 0))


class UpstreamUnavailable(UpstreamError):
    default_message = "The Batch API is unavailable right now. Try again in a minute."
    http_status = 503
    default_hint = (
        "This is a problem reaching the Batch API, not with your batches. Try again in a minute; "
        "if it lasts, check the OpenAI status page."
    )


class UpstreamTimeout(UpstreamError):
    default_message = "The Batch API did not answer in time. Try again in a minute."
    http_status = 504
    default_hint = UpstreamUnavailable.default_hint


class UpstreamAuthError(UpstreamError):
    default_message = (
        "The Batch API rejected the dashboard's API key. An administrator needs to check the project's API key."
    )
    http_status = 502
    default_hint = "Nothing on this page can fix that: tell whoever runs the dashboard."


class UpstreamForbidden(UpstreamError):
    default_message = "The Batch API refused this request: the dashboard's key lacks permission for it."
    http_status = 403
    default_hint = (
        "An administrator needs to check that the project's key may use the Batch API in this "
        "organization and project (its organization and project settings)."
    )


class UpstreamNotFound(UpstreamError):
    default_message = "The Batch API has no such object."
    http_status = 404
    default_hint = "Check the id in the address, or go back to the list of batches."


class InvalidId(UpstreamNotFound):
    """An id that can not be a real id. Raised before any request is sent."""

    default_message = "That is not a valid id, so there is nothing to show."


class UpstreamConflict(UpstreamError):
    default_message = "The Batch API refused: the batch is not in a state that allows this."
    http_status = 409
    default_hint = "Reload the batch to see the state it is in now."


class UpstreamRateLimited(UpstreamError):
    default_message = "The Batch API is rate limiting the dashboard. Try again shortly."
    http_status = 429

    @property
    def hint(self) -> str:
        if self.retry_after is not None:
            return f"Wait {retry_after_seconds(self.retry_after)} seconds, then try again. Nothing was changed."
        return "Wait a little, then try again. Nothing was changed."


class UpstreamBadRequest(UpstreamError):
    default_message = "The Batch API rejected the request as invalid."
    http_status = 400
    default_hint = "Check the address or what you entered, then try again."


class UpstreamBadResponse(UpstreamError):
    default_message = "The Batch API sent an answer the dashboard could not read."
    http_status = 502
    default_hint = (
        "Try again in a minute. If this keeps happening, the Batch API may be degraded, or the "
        "project's base URL may point at something that is not the Batch API (such as a proxy's error page)."
    )


# ---------------------------------------------------------------------------
# From an HTTP answer to an error
# ---------------------------------------------------------------------------


def _seconds(text: str, scale: float = 1.0) -> float | None:
    """A non-negative number of seconds from a header value, or None for anything else (``NaN`` and
    ``inf`` parse as floats but are no delay)."""
    try:
        value = float(text) / scale
    except ValueError:
        return None
    return max(value, 0.0) if math.isfinite(value) else None


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """``retry-after-ms``, else ``retry-after`` in seconds or as an HTTP date (NOTES.md §5.3)."""
    ms = headers.get("retry-after-ms")
    if ms and (seconds := _seconds(ms, 1000.0)) is not None:
        return seconds
    value = headers.get("retry-after")
    if not value:
        return None
    if (seconds := _seconds(value)) is not None:
        return seconds
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


#: Where each provider puts the id of a request for its support: OpenAI ``x-request-id``, Anthropic
#: ``request-id`` (provider-specs/NOTES.md §1.1), Azure's gateway ``apim-request-id`` (unverified, §"Could not verify").
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id")


def request_id_of(response: httpx.Response) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = response.headers.get(name)
        if value:
            return value
    return None


def _error_details(response: httpx.Response) -> tuple[str | None, str | None, str | None]:
    """(message, code, param) from an OpenAI error body (NOTES.md §5.1), tolerating anything else (an
    HTML gateway page, an empty body, truncated JSON)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError, httpx.HTTPError):
        return None, None, None
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        return None, None, None
    # Anthropic's body is {"type": "error", "error": {"type", "message", "details"?: {"error_code"}}}
    # (provider-specs/NOTES.md §1.7): its sub-code stands in for OpenAI's ``code``.
    details = err.get("details")
    code = _str_or_none(err.get("code")) or (_str_or_none(details.get("error_code")) if isinstance(details, dict) else None)
    return _str_or_none(err.get("message")), code, _str_or_none(err.get("param"))


def _retry_phrase(seconds: float | None) -> str:
    if seconds is None:
        return "Try again shortly."
    if seconds < 1:
        return "Try again in a second."
    return f"Try again in {retry_after_seconds(seconds)} seconds."


def error_from_response(response: httpx.Response, what: str = "request") -> UpstreamError:
    status = response.status_code
    message, code, param = _error_details(response)
    retry_after = parse_retry_after(response.headers)
    kwargs: dict[str, Any] = dict(
        status_code=status, request_id=request_id_of(response), code=code, param=param,
        upstream_message=message,
    )
    detail = f" The API said: “{message}”" if message else ""
    if status in (400, 422):
        return UpstreamBadRequest(f"The Batch API rejected the {what}.{detail}", **kwargs)
    if status == 401:
        return UpstreamAuthError(**kwargs)
    if status == 403:
        return UpstreamForbidden(f"The Batch API refused the {what}: the key lacks permission.{detail}", **kwargs)
    if status == 404:
        return UpstreamNotFound(f"The Batch API has no such object.{detail}", **kwargs)
    if status == 409:
        return UpstreamConflict(f"The Batch API refused the {what}.{detail}", **kwargs)
    if status == 413:
        # Anthropic's request_too_large: more than 256 MB or 100,000 requests in one batch (NOTES.md §1.4).
        return UpstreamBadRequest(f"The Batch API refused the {what} as too large.{detail}", **kwargs)
    if status == 429:
        return UpstreamRateLimited(
            f"The Batch API is rate limiting the dashboard. {_retry_phrase(retry_after)}", retry_after=retry_after, **kwargs
        )
    if status >= 500:
        return UpstreamUnavailable(
            f"The Batch API failed with an error ({status}). Try again in a minute.", retry_after=retry_after, **kwargs
        )
    return UpstreamBadRequest(f"The Batch API answered the {what} with an unexpected status {status}.{detail}", **kwargs)
