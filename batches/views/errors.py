"""Error pages rendered with the request, so they carry the identity bar, the CSP nonce and, for htmx
requests, only the message partial. Wired in ``dashboard/urls.py`` (handler403/404/500) and
``CSRF_FAILURE_VIEW``."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader


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
