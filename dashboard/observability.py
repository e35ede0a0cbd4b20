"""Running it in production: request ids, structured logs, and one metric per answered request.

* :class:`RequestContextMiddleware` (first in ``MIDDLEWARE``) gives every request an id (the proxy's
  ``X-Request-Id`` when it is short and made of safe characters, else a fresh uuid4 hex), echoes it in
  the response's ``X-Request-Id``, carries it, the signed-in person and the project slug in
  :mod:`contextvars` so every log line of the request can name them, logs one line per request with
  its duration, and counts the request in ``dashboard_http_requests_total``.
* :class:`JsonFormatter` (``DJANGO_LOG_FORMAT=json``) writes one JSON object per line: ``time``,
  ``level``, ``logger``, ``message`` and, where known, ``request_id``, ``person``, ``project``,
  ``upstream_request_id``, ``duration_ms``. Anything shaped like an API key or a bearer token is
  redacted from the line as a last line of defence (the code never logs the key in the first place).
* The metrics themselves live in :mod:`batches.metrics` (any layer increments them); ``/metrics``
  (``batches/views/ops.py``) exposes them.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from batches.metrics import HTTP_REQUESTS, HTTP_SECONDS

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# ---------------------------------------------------------------------------------------------------
# Request context
# ---------------------------------------------------------------------------------------------------

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("dashboard_request_id", default=None)
person_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("dashboard_person", default=None)
project_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("dashboard_project", default=None)

REQUEST_ID_HEADER = "X-Request-Id"
# What a proxy's id may look like to be reused: short, and nothing that could break a log line.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")

request_logger = logging.getLogger("dashboard.requests")


def valid_request_id(value: str | None) -> str | None:
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


class RequestContextMiddleware:
    """Request id in and out, context for the log lines, one log line and one metric per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        request_id = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or uuid.uuid4().hex
        request.request_id = request_id
        tokens = [
            (request_id_var, request_id_var.set(request_id)),
            (person_var, person_var.set(None)),
            (project_var, project_var.set(None)),
        ]
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            seconds = time.monotonic() - started
            match = getattr(request, "resolver_match", None)
            view = (match.view_name if match is not None else None) or "unmatched"
            method = request.method if request.method in _METHODS else "other"
            HTTP_REQUESTS.labels(view=view, method=method, status=str(response.status_code)).inc()
            HTTP_SECONDS.labels(view=view).observe(seconds)
            request_logger.info(
                "%s %s -> %s in %.0fms", request.method, request.path, response.status_code, seconds * 1000,
                extra={"duration_ms": round(seconds * 1000, 1), "status": response.status_code},
            )
            return response
        finally:
            for var, token in reversed(tokens):
                var.reset(token)

    def process_view(self, request, view_func, view_args, view_kwargs):
        """Runs after every middleware's ``__call__`` part, so the identity is known by now."""
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            person_var.set(user.get_username())
        slug = view_kwargs.get("project")
        if isinstance(slug, str):
            project_var.set(slug)
        return None


# ---------------------------------------------------------------------------------------------------
# JSON logs
# ---------------------------------------------------------------------------------------------------

# Anything shaped like an OpenAI key or a bearer token; the code never logs one, this is the backstop.
_SECRET_PATTERNS = (
    (re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer [redacted]"),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{6,}"), "sk-[redacted]"),
)
_EXTRA_FIELDS = ("upstream_request_id", "duration_ms", "status", "upstream_status", "operation", "worker_id")


def redact(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``DJANGO_LOG_FORMAT=json``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field, var in (("request_id", request_id_var), ("person", person_var), ("project", project_var)):
            value = getattr(record, field, None) or var.get()
            if value:
                entry[field] = value
        for field in _EXTRA_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return redact(json.dumps(entry, ensure_ascii=False, default=str))
