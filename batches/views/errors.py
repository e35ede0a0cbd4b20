"""Error pages rendered with the request, so they carry the identity bar, the CSP nonce and, for htmx
requests, only the message partial. Wired in ``dashboard/urls.py`` (handler403/404/500) and
``CSRF_FAILURE_VIEW``.

An upstream failure is not a bug in the dashboard, so it never becomes a 500 or a traceback:
:func:`upstream_error_response` says in one sentence what failed (the error's message) and in another
what the operator can do about it (the error's ``hint``), answers with the error's ``http_status``
(404, 409, 429, 502, 503, 504, …) and a ``Retry-After`` when the upstream gave one, and logs one line
with the upstream status and ``x-request-id`` (the id OpenAI support asks for).
"""

from __future__ import annotations

import logging

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader

from ..upstream import UpstreamError
from .pages import render_page

logger = logging.getLogger("batches.views")


def log_upstream_error(request: HttpRequest, err: UpstreamError, title: str) -> None:
    logger.warning(
        "%s: %s %s failed: %s upstream_status=%s request_id=%s",
        title, request.method, request.path, type(err).__name__, err.status_code, err.request_id,
    )


def with_retry_after(response: HttpResponse, err: UpstreamError | None) -> HttpResponse:
    """Pass the upstream's Retry-After on to the browser, rounded up to whole seconds."""
    if err is not None and err.retry_after_header is not None:
        response["Retry-After"] = err.retry_after_header
    return response


def upstream_error_response(request: HttpRequest, err: UpstreamError, *, title: str) -> HttpResponse:
    """The page (or htmx partial) shown when the upstream failed: two sentences, never a traceback."""
    log_upstream_error(request, err, title)
    context = {"error": err, "hint": err.hint, "title": title}
    response = render_page(request, "batches/upstream_error.html", "error-message", context, status=err.http_status)
    return with_retry_after(response, err)


def _template(request: HttpRequest, name: str) -> str:
    if request.headers.get("HX-Request") == "true":
        return name + "#refusal"
    return name


def _message(exception: Exception | None) -> str:
    """Only messages our own code wrote (``Http404("…")``); a URL resolver miss carries a dict."""
    if exception is not None and exception.args and isinstance(exception.args[0], str):
        return exception.args[0]
    return ""


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = _message(exception) if isinstance(exception, Http404) else ""
    return render(request, _template(request, "404.html"), {"exception": message}, status=404)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, _template(request, "403.html"), {"exception": _message(exception)}, status=403)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    # The reason is for the log (Django logs it as django.security.csrf), not for the page.
    return render(request, _template(request, "403_csrf.html"), {}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request context: rendering must not depend on anything that might itself be broken.
    return HttpResponse(loader.get_template("500.html").render(), status=500)
