"""The metrics every process records: plain prometheus-client objects, defined once on the ground floor.

Any module increments them (``from batches.metrics import WEBHOOK_DELIVERIES`` then
``WEBHOOK_DELIVERIES.labels(project=slug, outcome="accepted").inc()``). In a deployment with several
processes (gunicorn workers, the task worker, the sync) each process writes its values to files under
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode) and ``/metrics``
(``batches/views/ops.py``) merges them; ``dashboard/observability.py`` counts each answered request.

Label values must come from small fixed sets (never ids, never free text), so the number of series
stays bounded. The names are part of the operations contract: docs/operations.md lists them.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

UPSTREAM_REQUESTS = Counter(
    "dashboard_upstream_requests_total",
    "HTTP requests sent to the upstream Batch/Files API, by project, operation and outcome "
    "(HTTP status code, or timeout / unreachable / broken when no status came back). Every attempt counts.",
    ["project", "operation", "status"],
)
UPSTREAM_SECONDS = Histogram(
    "dashboard_upstream_request_duration_seconds",
    "Time until the upstream answered one attempt (headers for streamed downloads).",
    ["project", "operation"],
    buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
)
UPSTREAM_RETRIES = Counter(
    "dashboard_upstream_retries_total",
    "Upstream attempts repeated under the client's retry policy.",
    ["project", "operation"],
)
READ_CACHE = Counter(
    "dashboard_read_cache_total",
    "Shared upstream reads: hit (served from the cache), miss (this reader called the upstream), "
    "coalesced (waited for another reader's upstream call).",
    ["project", "outcome"],
)
UPSTREAM_BREAKER = Counter(
    "dashboard_upstream_breaker_total",
    "The circuit breaker of a project's upstream, in each process: opened (requests in a row timed out), "
    "refused (a call answered at once while it is open), closed (the upstream answered again).",
    ["project", "event"],
)
WEBHOOK_DELIVERIES = Counter(
    "dashboard_webhook_deliveries_total",
    "Webhook deliveries received from OpenAI, by project and outcome "
    "(queued, replay, ignored, refused).",
    ["project", "outcome"],
)
NOTIFICATIONS = Counter(
    "dashboard_notifications_total",
    "Notifications the dashboard tried to send, by channel (email, webhook, ...) and outcome (sent, failed).",
    ["channel", "outcome"],
)
HTTP_REQUESTS = Counter(
    "dashboard_http_requests_total",
    "Requests the dashboard answered, by view name, method and status code.",
    ["view", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "dashboard_http_request_duration_seconds",
    "Time the dashboard took to produce a response (streamed bodies: until the first byte).",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# (first path segment, number of segments, third segment): the operation label, or (label for POST,
# label for any other method) where one path serves two operations.
_OPERATIONS: dict[tuple[str, int, str], str | tuple[str, str]] = {
    ("batches", 1, ""): ("create", "list"),
    ("batches", 2, ""): "retrieve",
    ("batches", 3, "cancel"): "cancel",
    ("files", 1, ""): ("upload", "file_list"),
    ("files", 2, ""): "file_retrieve",
    ("files", 3, "content"): "file_content",
}


def upstream_operation(method: str, path: str) -> str:
    """The operation label of an upstream request path (relative to the base URL, e.g. ``batches/x``)."""
    parts = [part for part in path.split("?", 1)[0].strip("/").split("/") if part]
    if not parts:
        return "other"
    label = _OPERATIONS.get((parts[0], len(parts), parts[2] if len(parts) == 3 else ""), "other")
    if isinstance(label, tuple):
        return label[0] if method == "POST" else label[1]
    return label


def record_upstream(project: str, method: str, path: str, status: int | str, seconds: float) -> None:
    operation = upstream_operation(method, path)
    UPSTREAM_REQUESTS.labels(project=project or "unknown", operation=operation, status=str(status)).inc()
    UPSTREAM_SECONDS.labels(project=project or "unknown", operation=operation).observe(seconds)


def record_upstream_retry(project: str, method: str, path: str) -> None:
    UPSTREAM_RETRIES.labels(project=project or "unknown", operation=upstream_operation(method, path)).inc()
