"""Helpers shared by the views: mapping upstream errors to an honest response."""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ..client import UpstreamError

logger = logging.getLogger("batches.views")


def upstream_error_response(request: HttpRequest, err: UpstreamError, *, title: str) -> HttpResponse:
    """The page (or htmx partial) shown when the upstream failed: a sentence, never a traceback."""
    logger.warning(
        "%s failed: %s status=%s request_id=%s", title, type(err).__name__, err.status_code, err.request_id
    )
    context = {"error": err, "title": title}
    template = "batches/upstream_error.html"
    if request.htmx:
        template += "#error-message"
    response = render(request, template, context, status=err.http_status)
    if err.retry_after is not None:
        response["Retry-After"] = str(int(err.retry_after + 0.999))
    return response
