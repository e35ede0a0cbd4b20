"""For the people who run the dashboard: ``/metrics`` (Prometheus) and ``/readyz`` (readiness).

Neither needs a signed-in identity (``batches/auth.py`` lists them in ``OPEN_PATHS``) and neither calls
the upstream. ``/metrics`` answers only peers in ``DASHBOARD_METRICS_ALLOWED``; anyone else gets the
same 404 as a page that does not exist. docs/operations.md lists every metric and check.
"""

from __future__ import annotations

import glob
import ipaddress
import logging
import os
import re
import uuid
from datetime import datetime

from django.core.cache import cache
from django.db import DatabaseError, connection
from django.db.models import Count, Max
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_tasks_db.models import DBTaskResult
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from .. import taskqueue
from ..conf import conf
from ..costs.models import BillingSync
from ..models import BatchRecord, SyncState, WorkerHeartbeat
from ..projects import all_projects

logger = logging.getLogger("batches.ops")



# -- who may read /metrics ----------------------------------------------------------------------


def _allowed(address: str) -> bool:
    try:
        peer = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(peer in network for network in conf().metrics_allowed)


#: Headers in which a proxy names the client it relays for (WSGI names). Each one present must name
#: only allowed addresses: checking one and not another lets a relayed request through.
ADDRESS_HEADERS = (
    "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_X_CLIENT_IP", "HTTP_CLIENT_IP", "HTTP_X_CLUSTER_CLIENT_IP",
    "HTTP_TRUE_CLIENT_IP", "HTTP_CF_CONNECTING_IP", "HTTP_FASTLY_CLIENT_IP", "HTTP_X_ORIGINAL_FORWARDED_FOR",
    "HTTP_FORWARDED_FOR", "HTTP_X_ENVOY_EXTERNAL_ADDRESS", "HTTP_X_PROXYUSER_IP",
)
#: RFC 7239 §4: every ``for=`` node of every element (a quoted value may hold ``[v6]:port``).
FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for\s*=\s*("(?:[^"\\]|\\.)*"|[^;,\s]*)', re.IGNORECASE)


def _node_address(node: str) -> str:
    """The address of an RFC 7239 node (``192.0.2.1:80``, ``"[2001:db8::1]:80"``); "unknown" and
    obfuscated names (``_hidden``) are returned as they are and then fail :func:`_allowed`."""
    node = node.strip().strip('"')
    if node.startswith("["):
        return node[1:].partition("]")[0]
    if node.count(":") == 1:
        return node.partition(":")[0]
    return node


def relayed_for(request: HttpRequest) -> list[str] | None:
    """Every address a proxy says this request was relayed for; ``None`` when it was relayed for someone
    it does not name (a ``Forwarded`` header without ``for=``, a ``Via``, or a signed-in identity)."""
    meta = request.META
    if meta.get("HTTP_VIA") or meta.get(f"HTTP_{conf().auth_header.upper().replace('-', '_')}"):
        return None
    addresses: list[str] = []
    forwarded = meta.get("HTTP_FORWARDED", "")
    if forwarded:
        nodes = FORWARDED_FOR.findall(forwarded)
        if not nodes:
            return None
        addresses += [_node_address(node) for node in nodes]
    for header in ADDRESS_HEADERS:
        addresses += [part for part in meta.get(header, "").split(",") if part.strip()]
    return addresses


def metrics_peer_allowed(request: HttpRequest) -> bool:
    """The direct peer, and every address any proxy header says it relayed for, must be in the
    allow-list: a request that came through the sign-in proxy on loopback on behalf of someone else is
    refused, whichever header that proxy uses (RFC 7239 ``Forwarded``, ``X-Forwarded-For``,
    ``X-Real-IP``, …), and so is one relayed for someone no header names."""
    relayed = relayed_for(request)
    if relayed is None:
        return False
    return all(_allowed(address) for address in [request.META.get("REMOTE_ADDR", ""), *relayed])


# -- /metrics -------------------------------------------------------------------------------------


class _ProcessFiles(MultiProcessCollector):
    """prometheus-client's multiprocess collector over several directories: this process family's
    (``PROMETHEUS_MULTIPROC_DIR``) and the other processes' (``DASHBOARD_METRICS_DIRS``)."""

    def __init__(self, paths: list[str]) -> None:  # no registry, no single path
        self._paths = paths

    def collect(self):
        files = [name for path in self._paths for name in sorted(glob.glob(os.path.join(path, "*.db")))]
        return self.merge(files, accumulate=True)


class _ThisProcess:
    """Single-process mode (no multiprocess directory): the default registry's values."""

    def collect(self):
        return REGISTRY.collect()


def _timestamp(value: datetime | None) -> float:
    return value.timestamp() if value is not None else 0.0


#: The per-project gauges of the sync: key (in _sync_values), metric name, help.
SYNC_GAUGES = (
    ("last_success", "dashboard_sync_last_success_timestamp_seconds",
     "Unix time of the project's last successful sync pass (0: never)."),
    ("lag", "dashboard_sync_lag_seconds", "Seconds since the project's last successful sync pass (absent: never)."),
    ("duration", "dashboard_sync_last_pass_duration_seconds", "How long the project's last sync pass took."),
    ("calls", "dashboard_sync_last_pass_upstream_calls", "Upstream calls the project's last sync pass made."),
    ("failed", "dashboard_sync_last_pass_failed", "1 when the project's last sync pass ended with an error."),
    ("backfill_done", "dashboard_sync_backfill_done", "1 once the project's history has been read to the oldest batch."),
    ("backfill_oldest", "dashboard_sync_backfill_oldest_created_timestamp_seconds",
     "created_at of the oldest batch the backfill has reached (absent: not started)."),
)


def _sync_values(state: SyncState | None, now: datetime) -> dict[str, float | None]:
    """One project's value of each sync gauge; None leaves the project out of that gauge."""
    if state is None:
        return {"last_success": 0.0, "backfill_done": 0}
    return {
        "last_success": _timestamp(state.last_success),
        "lag": None if state.last_success is None else max(0.0, (now - state.last_success).total_seconds()),
        "duration": state.last_pass_seconds,
        "calls": state.last_pass_calls,
        "failed": None if state.last_pass_finished is None else (1 if state.last_error else 0),
        "backfill_done": 1 if state.backfill_done else 0,
        "backfill_oldest": state.backfill_oldest_created_at,
    }


class DashboardStateCollector:
    """Values read from the database at scrape time (a handful of small queries)."""

    def collect(self):
        up = GaugeMetricFamily("dashboard_state_up", "1 when the scrape-time database queries succeeded.")
        try:
            slugs = [project.slug for project in all_projects()]
            states = {state.project: state for state in SyncState.objects.filter(project__in=slugs)}
            records = list(
                BatchRecord.objects.filter(project__in=slugs).values("project", "status").annotate(n=Count("id"))
            )
            queue = list(DBTaskResult.objects.ready().values("queue_name").annotate(n=Count("id")))
            waits = taskqueue.oldest_waits()
            stuck = taskqueue.stuck_tasks()
            last_beat = WorkerHeartbeat.objects.aggregate(last=Max("last_seen"))["last"]
            billing = list(BillingSync.objects.all())
        except DatabaseError as err:
            logger.warning("metrics: state queries failed: %s", type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        now = timezone.now()

        gauges = {key: GaugeMetricFamily(name, text, labels=["project"]) for key, name, text in SYNC_GAUGES}
        for slug in slugs:
            for key, value in _sync_values(states.get(slug), now).items():
                if value is not None:
                    gauges[key].add_metric([slug], value)
        yield from gauges.values()

        indexed = GaugeMetricFamily(
            "dashboard_index_batches", "Batches in the dashboard's index, by project and status.",
            labels=["project", "status"])
        for row in records:
            indexed.add_metric([row["project"], row["status"] or "unknown"], row["n"])
        yield indexed

        depth = GaugeMetricFamily(
            "dashboard_task_queue_depth", "Tasks ready to run and not yet claimed by a worker, by queue.",
            labels=["queue"])
        for row in queue:
            depth.add_metric([row["queue_name"]], row["n"])
        yield depth

        oldest = GaugeMetricFamily(
            "dashboard_task_queue_oldest_wait_seconds",
            "How long the oldest task ready to run has waited, by queue (absent: nothing waits).", labels=["queue"])
        for name, seconds in sorted(waits.items()):
            oldest.add_metric([name], seconds)
        yield oldest

        stuck_gauge = GaugeMetricFamily(
            "dashboard_tasks_stuck", "Tasks RUNNING that will not finish: their worker stopped, or they run too long.")
        stuck_gauge.add_metric([], len(stuck))
        yield stuck_gauge

        beat = GaugeMetricFamily(
            "dashboard_worker_heartbeat_age_seconds",
            "Seconds since the freshest task worker heartbeat (absent: no worker ever ran).")
        if last_beat is not None:
            beat.add_metric([], max(0.0, (now - last_beat).total_seconds()))
        yield beat

        # The billing pass (manage.py sync_costs, batches/costs/billing.py): one row per organization.
        billed = GaugeMetricFamily(
            "dashboard_billing_last_success_timestamp_seconds",
            "Unix time of the billing pass's last success over the Admin API (0: never).", labels=["sync"])
        billing_failed = GaugeMetricFamily(
            "dashboard_billing_last_pass_failed", "1 when the billing pass's last pass ended with an error.", labels=["sync"])
        for state in billing:
            billed.add_metric([state.name], _timestamp(state.last_success))
            billing_failed.add_metric([state.name], 1 if state.last_error else 0)
        yield billed
        yield billing_failed


@require_safe
@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_peer_allowed(request):
        raise Http404
    registry = CollectorRegistry(auto_describe=False)
    dirs = [path for path in (conf().prometheus_multiproc_dir, *conf().metrics_dirs) if path]
    registry.register(_ProcessFiles(dirs) if dirs else _ThisProcess())
    registry.register(DashboardStateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


# -- /readyz --------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _check_database() -> dict:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:  # any database failure means "not ready"
        return {"ok": False, "problem": "the database is unreachable"}
    return {"ok": True}


def _check_cache() -> dict:
    key, token = f"readyz:{uuid.uuid4().hex}", uuid.uuid4().hex
    try:
        cache.set(key, token, timeout=10)
        ok = cache.get(key) == token
        cache.delete(key)
    except Exception as err:  # a cache server that is down raises its client's own errors
        return {"ok": False, "problem": f"the cache backend failed ({type(err).__name__})"}
    return {"ok": True} if ok else {"ok": False, "problem": "the cache backend did not return what was stored"}


def _check_worker(now: datetime) -> dict:
    if not conf().ready_require_worker:
        return {"ok": True, "required": False}
    limit = taskqueue.worker_stale_after().total_seconds()
    freshest = WorkerHeartbeat.objects.order_by("-last_seen").first()
    if freshest is None:
        return {"ok": False, "problem": "no task worker has ever sent a heartbeat (manage.py run_worker)",
                "since": None}
    age = (now - freshest.last_seen).total_seconds()
    if age > limit:
        return {"ok": False, "problem": f"no task worker heartbeat for {age:.0f}s (allowed {limit:.0f}s)",
                "since": _iso(freshest.last_seen), "worker_id": freshest.worker_id}
    return {"ok": True, "last_seen": _iso(freshest.last_seen)}


def _check_queue(now: datetime) -> dict:
    """The oldest waiting task must not be older than ``DASHBOARD_READY_QUEUE_AGE_SECONDS`` (the worker
    keeps up), and no task may be stuck (a dead worker's task not yet run again, or one running too long)."""
    limit = conf().ready_queue_age_seconds
    waits = taskqueue.oldest_waits(now)
    stuck = taskqueue.stuck_tasks(now)
    result: dict = {"ok": True, "oldest_wait_seconds": {name: round(s, 1) for name, s in sorted(waits.items())},
                    "stuck": len(stuck)}
    problems = [f"the oldest task in queue “{name}” has waited {s:.0f}s (allowed {limit:.0f}s)"
                for name, s in sorted(waits.items()) if s > limit]
    if stuck:
        problems.append(f"{len(stuck)} task{'s' if len(stuck) != 1 else ''} stuck: {stuck[0]['why']}")
    if not conf().ready_require_worker:
        result["required"] = False  # no worker expected (development): nothing waits for one
    elif problems:
        result.update(ok=False, problem="; ".join(problems))
    return result


def _check_sync(now: datetime, detailed: bool) -> dict:
    if not conf().ready_require_sync:
        return {"ok": True, "required": False}
    limit = conf().ready_sync_lag_seconds
    slugs = [project.slug for project in all_projects()]
    states = {state.project: state for state in SyncState.objects.filter(project__in=slugs)}
    projects = {}
    for slug in slugs:
        state = states.get(slug)
        if state is None or state.last_success is None:
            result = {"ok": False, "problem": "no successful sync pass yet",
                      "since": _iso(state.last_pass_started if state else None)}
        else:
            lag = (now - state.last_success).total_seconds()
            if lag > limit:
                result = {"ok": False, "problem": f"the sync lags by {lag:.0f}s (allowed {limit:.0f}s)",
                          "since": _iso(state.last_success)}
            else:
                result = {"ok": True, "last_success": _iso(state.last_success)}
        if not result["ok"] and state is not None and state.last_error and detailed:
            result["last_error"] = state.last_error[:300]
        projects[slug] = result
    return {"ok": all(result["ok"] for result in projects.values()), "projects": projects}


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """200 when this instance can serve: database, cache, and (when required) a live task worker and a
    fresh sync of every project; else 503 naming what is wrong and since when. No upstream call."""
    now = timezone.now()
    checks = {"database": _check_database(), "cache": _check_cache()}
    if checks["database"]["ok"]:
        try:
            checks["worker"] = _check_worker(now)
            checks["queue"] = _check_queue(now)
            checks["sync"] = _check_sync(now, detailed=metrics_peer_allowed(request))
        except DatabaseError as err:
            checks["worker"] = checks["queue"] = checks["sync"] = {"ok": False, "problem": f"not checked ({type(err).__name__})"}
    else:
        checks["worker"] = checks["queue"] = checks["sync"] = {"ok": False, "problem": "not checked: the database is unreachable"}
    failing = [name for name, result in checks.items() if not result["ok"]]
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": checks, "time": _iso(now)}
    return JsonResponse(body, status=503 if failing else 200)
