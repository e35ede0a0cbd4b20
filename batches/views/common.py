"""Helpers shared by the views: mapping upstream errors to an honest response.

An upstream failure is not a bug in the dashboard, so it never becomes a 500 or a traceback: the page
(or htmx partial) says in one sentence what failed (the error's message, from batches/client.py) and
in another what the operator can do about it (:func:`error_hint`), answers with the error's
``http_status`` (404, 409, 429, 502, 503, 504, …) and a ``Retry-After`` when the upstream gave one, and
logs one line with the upstream status and ``x-request-id`` (the id OpenAI support asks for).
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ..client import (
    UpstreamAuthError,
    UpstreamBadRequest,
    UpstreamBadResponse,
    UpstreamConflict,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

logger = logging.getLogger("batches.views")


def error_hint(err: UpstreamError) -> str:
    """What the operator can do about ``err``: the second sentence of every error page."""
    if isinstance(err, UpstreamNotFound):
        return "Check the id in the address, or go back to the list of batches."
    if isinstance(err, UpstreamAuthError):
        return "Nothing on this page can fix that: tell whoever runs the dashboard."
    if isinstance(err, UpstreamForbidden):
        return (
            "An administrator needs to check that the dashboard's key may use the Batch API in this "
            "organization and project (OPENAI_ORG_ID, OPENAI_PROJECT_ID)."
        )
    if isinstance(err, UpstreamRateLimited):
        if err.retry_after is not None:
            return f"Wait {int(err.retry_after + 0.999)} seconds, then try again. Nothing was changed."
        return "Wait a little, then try again. Nothing was changed."
    if isinstance(err, UpstreamConflict):
        return "Reload the batch to see the state it is in now."
    if isinstance(err, UpstreamBadResponse):
        return (
            "Try again in a minute. If this keeps happening, the Batch API may be degraded, or "
            "OPENAI_BASE_URL may point at something that is not the Batch API (such as a proxy's error page)."
        )
    if isinstance(err, UpstreamBadRequest):
        return "Check the address or what you entered, then try again."
    if isinstance(err, (UpstreamUnavailable, UpstreamTimeout)):
        return (
            "This is a problem reaching the Batch API, not with your batches. Try again in a minute; "
            "if it lasts, check the OpenAI status page."
        )
    return "Try again in a minute. If it keeps happening, quote the request id below to OpenAI support."


def log_upstream_error(request: HttpRequest, err: UpstreamError, title: str) -> None:
    logger.warning(
        "%s: %s %s failed: %s upstream_status=%s request_id=%s",
        title, request.method, request.path, type(err).__name__, err.status_code, err.request_id,
    )


def upstream_error_response(request: HttpRequest, err: UpstreamError, *, title: str) -> HttpResponse:
    """The page (or htmx partial) shown when the upstream failed: two sentences, never a traceback."""
    log_upstream_error(request, err, title)
    context = {"error": err, "hint": error_hint(err), "title": title}
    template = "batches/upstream_error.html"
    if request.htmx:
        template += "#error-message"
    response = render(request, template, context, status=err.http_status)
    if err.retry_after is not None:
        response["Retry-After"] = str(int(err.retry_after + 0.999))
    return response
