"""/metrics: Prometheus text with the documented names and labels after real traffic through gunicorn with
two workers (multiprocess mode), the allow-list, the scrape-time state, and no key anywhere in it."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import EMULATOR_KEY
from tests.servers import dashboard_env, run_gunicorn


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample as {(name, labels): value}; parsing fails loudly on malformed exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


def total(found: dict, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def get(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode()


def test_metrics_after_real_traffic_through_two_gunicorn_workers(tmp_path, emulator):
    env = dashboard_env(
        tmp_path,
        OPENAI_BASE_URL=emulator.base_url,
        OPENAI_API_KEY=EMULATOR_KEY,
        DASHBOARD_AUTH="none",
        DASHBOARD_CACHE_SECONDS="60",
    )
    batch_id = emulator.state.list_batches()[0]["id"]
    with run_gunicorn(env, "-c", "dashboard/gunicorn_conf.py", "--workers", "2", "--threads", "2") as base:
        for _ in range(6):
            assert get(base + "/projects/default/batches/")[0] == 200
        assert get(base + f"/projects/default/batches/{batch_id}/")[0] == 200
        assert get(base + "/projects/default/batches/batch_doesnotexist0/")[0] == 404
        scrapes = [get(base + "/metrics") for _ in range(4)]
        relayed = get(base + "/metrics", {"X-Forwarded-For": "10.1.2.3"})

    for status, headers, body in scrapes:
        assert status == 200
        assert headers["Content-Type"].startswith("text/plain; version=")
        assert EMULATOR_KEY not in body and "Bearer" not in body
    found = samples(scrapes[-1][2])
    # Every scrape sees all six list views, whichever worker answers it: the workers' files are merged.
    for _, _, body in scrapes:
        assert value(samples(body), "dashboard_http_requests_total", view="batches:list", method="GET",
                     status="200") == 6
    assert total(found, "dashboard_http_requests_total", view="batches:detail", status="200") == 1
    assert total(found, "dashboard_http_requests_total", view="batches:detail", status="404") == 1
    assert total(found, "dashboard_http_request_duration_seconds_count", view="batches:list") == 6

    # Upstream calls by project, operation and status, with latency histograms.
    assert total(found, "dashboard_upstream_requests_total", project="default", operation="list", status="200") >= 1
    assert total(found, "dashboard_upstream_requests_total", project="default", operation="retrieve",
                 status="200") >= 1
    assert total(found, "dashboard_upstream_requests_total", project="default", operation="retrieve",
                 status="404") == 1
    assert total(found, "dashboard_upstream_request_duration_seconds_count", project="default",
                 operation="list") >= 1
    assert value(found, "dashboard_upstream_request_duration_seconds_bucket", project="default",
                 operation="list", le="+Inf") >= 1
    # Six list views on two workers with a 60 s cache: each worker's first read misses, the rest hit.
    misses = total(found, "dashboard_read_cache_total", project="default", outcome="miss")
    hits = total(found, "dashboard_read_cache_total", project="default", outcome="hit")
    assert hits >= 4 and misses >= 1

    # Scrape-time state from the database.
    assert value(found, "dashboard_state_up") == 1
    assert value(found, "dashboard_sync_last_success_timestamp_seconds", project="default") == 0
    assert value(found, "dashboard_sync_backfill_done", project="default") == 0
    # A relayed request for a foreign client is refused like an unknown page.
    assert relayed[0] == 404 and "dashboard_" not in relayed[2]


@pytest.mark.django_db
def test_a_retried_upstream_read_counts_each_attempt_and_the_retry(upstream):
    from prometheus_client import REGISTRY

    def now(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    labels = {"project": "default", "operation": "list"}
    before = {"retries": now("dashboard_upstream_retries_total", **labels),
              "503": now("dashboard_upstream_requests_total", status="503", **labels),
              "200": now("dashboard_upstream_requests_total", status="200", **labels)}
    upstream.state.inject_fault(route="GET /v1/batches", status=503, headers={"retry-after-ms": "1"}, times=1)
    assert Client().get("/projects/default/batches/").status_code == 200
    assert now("dashboard_upstream_retries_total", **labels) == before["retries"] + 1
    assert now("dashboard_upstream_requests_total", status="503", **labels) == before["503"] + 1
    assert now("dashboard_upstream_requests_total", status="200", **labels) == before["200"] + 1


@pytest.mark.django_db
def test_a_foreign_peer_gets_404_and_the_allow_list_is_configurable(settings):
    client = Client()
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    # Through the proxy on loopback, relaying for someone outside the list: refused.
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 404
    assert client.get("/metrics", headers={"X-Real-IP": "not-an-address"}).status_code == 404
    import ipaddress

    settings.DASHBOARD_METRICS_ALLOWED = [ipaddress.ip_network("10.1.0.0/16")]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer listed
    assert client.post("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 405


@pytest.mark.django_db
def test_metrics_need_no_identity_in_proxy_mode(settings):
    settings.DASHBOARD_AUTH = "proxy"
    assert Client().get("/metrics").status_code == 200  # no X-Forwarded-Email


@pytest.mark.django_db
def test_sync_backfill_queue_and_worker_state_are_read_at_scrape_time():
    from django.tasks import task  # noqa: F401  (the framework is there; rows are written directly)
    from django_tasks_db.models import DBTaskResult

    from batches.models import BatchRecord, SyncState, WorkerHeartbeat

    now = timezone.now()
    SyncState.objects.create(project="default", last_success=now - timedelta(seconds=42), last_pass_seconds=1.5,
                             last_pass_calls=3, last_pass_finished=now, backfill_oldest_created_at=1_700_000_000,
                             last_error="The Batch API could not be reached.")
    SyncState.objects.create(project="gone", last_success=now)  # not a configured project: not reported
    for i, status in enumerate(["completed", "completed", "in_progress"]):
        BatchRecord.objects.create(project="default", batch_id=f"batch_{i}", status=status, created_at=1_700_000_000,
                                   last_synced=now)
    WorkerHeartbeat.objects.create(worker_id="w1", started=now, last_seen=now - timedelta(seconds=7))
    for queue in ("default", "default", "mail"):
        DBTaskResult.objects.create(task_path="batches.index.refresh.nothing", queue_name=queue, backend_name="default",
                                    args_kwargs={"args": [], "kwargs": {}}, priority=0, run_after=now)

    found = samples(Client().get("/metrics").content.decode())
    assert 41 <= value(found, "dashboard_sync_lag_seconds", project="default") <= 60
    assert value(found, "dashboard_sync_last_success_timestamp_seconds", project="default") == pytest.approx(
        (now - timedelta(seconds=42)).timestamp())
    assert value(found, "dashboard_sync_last_pass_duration_seconds", project="default") == 1.5
    assert value(found, "dashboard_sync_last_pass_upstream_calls", project="default") == 3
    assert value(found, "dashboard_sync_last_pass_failed", project="default") == 1
    assert value(found, "dashboard_sync_backfill_oldest_created_timestamp_seconds", project="default") == 1.7e9
    assert value(found, "dashboard_index_batches", project="default", status="completed") == 2
    assert value(found, "dashboard_index_batches", project="default", status="in_progress") == 1
    assert value(found, "dashboard_task_queue_depth", queue="default") == 2
    assert value(found, "dashboard_task_queue_depth", queue="mail") == 1
    assert 7 <= value(found, "dashboard_worker_heartbeat_age_seconds") <= 30
    assert not any(labels and ("project", "gone") in labels for _, labels in found)


@pytest.mark.django_db
def test_the_billing_pass_state_is_read_at_scrape_time():
    from batches.costs.models import BillingSync

    at = timezone.now() - timedelta(hours=2)
    BillingSync.objects.create(name="organization", last_success=at, last_error="The Admin API refused the key.")
    found = samples(Client().get("/metrics").content.decode())
    assert value(found, "dashboard_billing_last_success_timestamp_seconds", sync="organization") == pytest.approx(at.timestamp())
    assert value(found, "dashboard_billing_last_pass_failed", sync="organization") == 1


def test_the_counters_other_code_increments_are_exposed():
    from batches.metrics import NOTIFICATIONS, WEBHOOK_DELIVERIES, upstream_operation

    WEBHOOK_DELIVERIES.labels(project="default", outcome="accepted").inc()
    NOTIFICATIONS.labels(channel="email", outcome="failed").inc()
    from prometheus_client import REGISTRY, generate_latest

    found = samples(generate_latest(REGISTRY).decode())
    assert value(found, "dashboard_webhook_deliveries_total", project="default", outcome="accepted") >= 1
    assert value(found, "dashboard_notifications_total", channel="email", outcome="failed") >= 1
    assert [upstream_operation(m, p) for m, p in [
        ("GET", "batches"), ("GET", "batches/batch_1"), ("POST", "batches/batch_1/cancel"), ("POST", "batches"),
        ("POST", "files"), ("GET", "files/file-1"), ("GET", "files/file-1/content"), ("GET", "models"),
    ]] == ["list", "retrieve", "cancel", "create", "upload", "file_retrieve", "file_content", "other"]


def test_the_gunicorn_conf_starts_every_run_with_an_empty_metrics_directory(tmp_path, monkeypatch):
    import os
    import runpy

    from tests.servers import REPO

    conf = str(REPO / "dashboard" / "gunicorn_conf.py")
    given = tmp_path / "metrics-web"
    given.mkdir()
    (given / "counter_4242.db").write_bytes(b"stale")
    (given / "README").write_text("not a metrics file")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(given))
    namespace = runpy.run_path(conf)
    assert sorted(p.name for p in given.iterdir()) == ["README"]
    namespace["on_exit"](None)
    assert given.is_dir()  # a directory it was given is not removed

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    namespace = runpy.run_path(conf)
    made = os.environ.pop("PROMETHEUS_MULTIPROC_DIR")  # set for the workers it will fork
    assert os.path.isdir(made) and made != str(given)
    namespace["on_exit"](None)
    assert not os.path.exists(made)


@pytest.mark.django_db
def test_webhook_deliveries_and_notifications_are_counted(client, settings):
    """A refused webhook is counted (unknown slugs under one label), and so is a sent notification."""
    from django.core import mail
    from prometheus_client import REGISTRY

    from batches.notify.rules import notification_record
    from batches.notify.tasks import deliver

    def value(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = value("dashboard_webhook_deliveries_total", project="(unknown)", outcome="refused")
    assert client.post("/webhooks/openai/no-such-project/", b"{}", content_type="application/json").status_code == 400
    assert value("dashboard_webhook_deliveries_total", project="(unknown)", outcome="refused") == before + 1

    sent_before = value("dashboard_notifications_total", channel="email", outcome="sent")
    row = notification_record("default", "batch_m1", "completed", "email:ops@example.com", "", timezone.now())
    assert deliver(row) == "sent" and len(mail.outbox) == 1
    assert value("dashboard_notifications_total", channel="email", outcome="sent") == sent_before + 1
