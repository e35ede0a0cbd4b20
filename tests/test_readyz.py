"""/readyz: 200 when the database, the cache, a live task worker and a fresh sync of every project are
there; 503 with a JSON body naming what is wrong and since when. /healthz stays cheap."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from batches.models import SyncState, WorkerHeartbeat


@pytest.fixture
def ready(settings, db):
    """Worker and sync required; a fresh heartbeat and a fresh sync: everything ready."""
    settings.DASHBOARD_READY_REQUIRE_WORKER = True
    settings.DASHBOARD_READY_REQUIRE_SYNC = True
    settings.DASHBOARD_WORKER_HEARTBEAT_SECONDS = 15
    settings.DASHBOARD_READY_SYNC_LAG_SECONDS = 90
    now = timezone.now()
    WorkerHeartbeat.objects.create(worker_id="w1", started=now, last_seen=now - timedelta(seconds=5))
    SyncState.objects.create(project="default", last_success=now - timedelta(seconds=20))
    return now


def readyz(**extra):
    response = Client().get("/readyz", **extra)
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    return response.status_code, response.json()


def test_ready_when_everything_is_fresh(ready):
    status, body = readyz()
    assert status == 200, body
    assert body["status"] == "ok" and body["failing"] == []
    assert body["checks"]["database"]["ok"] and body["checks"]["cache"]["ok"]
    assert body["checks"]["sync"]["projects"]["default"]["ok"]


def test_a_stopped_worker_heartbeat_turns_it_503_and_says_since_when(ready):
    stopped = ready - timedelta(seconds=61)  # more than 4 × 15 s ago
    WorkerHeartbeat.objects.filter(worker_id="w1").update(last_seen=stopped)
    status, body = readyz()
    assert status == 503
    assert body["status"] == "fail" and body["failing"] == ["worker"]
    worker = body["checks"]["worker"]
    seconds = re.fullmatch(r"no task worker heartbeat for (\d+)s \(allowed 60s\)", worker["problem"])
    assert worker["ok"] is False and seconds and 61 <= int(seconds.group(1)) <= 70  # the clock ran on a little
    assert worker["since"] == stopped.isoformat() and worker["worker_id"] == "w1"
    # A fresher second worker makes it ready again.
    WorkerHeartbeat.objects.create(worker_id="w2", started=ready, last_seen=ready)
    assert readyz()[0] == 200


def test_no_worker_ever(ready):
    WorkerHeartbeat.objects.all().delete()
    status, body = readyz()
    assert status == 503 and body["failing"] == ["worker"]
    assert body["checks"]["worker"]["since"] is None
    assert body["checks"]["worker"]["problem"].startswith("no task worker has ever sent a heartbeat")


def test_a_lagging_sync_turns_it_503_naming_the_project_and_since_when(ready):
    last = ready - timedelta(seconds=300)
    SyncState.objects.filter(project="default").update(last_success=last, last_error="The Batch API could not be reached.")
    status, body = readyz()
    assert status == 503 and body["failing"] == ["sync"]
    project = body["checks"]["sync"]["projects"]["default"]
    assert project["ok"] is False and "the sync lags by 300s (allowed 90s)" in project["problem"]
    assert project["since"] == last.isoformat()
    # The error text only for peers allowed to read /metrics (loopback here), not for anyone else.
    assert project["last_error"] == "The Batch API could not be reached."
    assert "last_error" not in readyz(REMOTE_ADDR="10.1.2.3")[1]["checks"]["sync"]["projects"]["default"]


def test_a_project_never_synced_is_not_ready(ready):
    SyncState.objects.all().delete()
    status, body = readyz()
    assert status == 503
    assert body["checks"]["sync"]["projects"]["default"]["problem"] == "no successful sync pass yet"


def test_the_worker_and_sync_checks_can_be_turned_off(ready, settings):
    WorkerHeartbeat.objects.all().delete()
    SyncState.objects.all().delete()
    settings.DASHBOARD_READY_REQUIRE_WORKER = False
    settings.DASHBOARD_READY_REQUIRE_SYNC = False
    status, body = readyz()
    assert status == 200
    assert body["checks"]["worker"] == {"ok": True, "required": False}


def test_a_broken_cache_backend_turns_it_503(ready, settings):
    # Nothing listens on port 9 (discard): the Redis client fails at once. (Changing CACHES makes Django's
    # test signal rebuild the cache handler, and the fixture's teardown rebuilds it again.)
    settings.CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://127.0.0.1:9/0",
                                   "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.5}}}
    status, body = readyz()
    assert status == 503 and "cache" in body["failing"]
    assert body["checks"]["cache"]["problem"].startswith("the cache backend failed")


def test_readyz_needs_no_identity_and_healthz_stays_cheap(ready, settings, django_assert_max_num_queries):
    settings.DASHBOARD_AUTH = "proxy"
    assert readyz()[0] == 200  # no X-Forwarded-Email
    with django_assert_max_num_queries(1):
        assert Client().get("/healthz").status_code == 200


def test_defaults_follow_debug(tmp_path):
    import subprocess
    import sys

    from tests.servers import REPO, dashboard_env

    code = "import dashboard.settings as s; print(s.DASHBOARD_READY_REQUIRE_WORKER, s.DASHBOARD_READY_REQUIRE_SYNC)"
    for debug, expected in (("0", "True True"), ("1", "False False")):
        env = dashboard_env(tmp_path, DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG=debug,
                            DASHBOARD_AUTH="none")
        result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                                timeout=60)
        assert result.stdout.strip() == expected, result.stderr


@pytest.mark.django_db(transaction=True)
def test_run_worker_runs_the_db_worker_and_writes_a_heartbeat(settings):
    settings.DASHBOARD_READY_REQUIRE_WORKER = True
    settings.DASHBOARD_READY_REQUIRE_SYNC = False
    assert readyz()[0] == 503
    call_command("run_worker", "--batch", "--no-startup-delay", "--worker-id", "worker-test-1", verbosity=0)
    heartbeat = WorkerHeartbeat.objects.get()
    assert heartbeat.worker_id == "worker-test-1" and heartbeat.pid
    assert (timezone.now() - heartbeat.last_seen).total_seconds() < 10
    status, body = readyz()
    assert status == 200, body
