"""Issue #23 items 2 and 4 with the real worker process (``manage.py run_worker``) on the test database:

* twenty notifications to a receiver that accepts connections and never answers do not delay a
  webhook's refresh: it is on the urgent queue, which the worker serves first, and every send is cut off
  at its total deadline;
* a worker killed with SIGKILL in the middle of a refresh leaves a task that shows as stuck in
  ``/metrics`` and ``/readyz``; the provider's redelivery is processed (the webhook id was never
  counted as handled), and the next worker runs the task again.

Timeouts and heartbeats are made small through the worker's environment; the test only waits for what
the real processes do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from batches.index.store import upsert_batches
from batches.models import BatchRecord, Notification, WebhookDelivery
from batches.notify.tasks import enqueue_send
from batches.index.refresh import refresh_batch
from batches.upstream import Batch
from notify_helpers import SlowReceiver, batch_record
from tests.test_notification_channels import database_tasks  # noqa: F401 (a fixture)
from tests.helpers import EMULATOR_KEY
from tests.servers import REPO, dashboard_env
from tests.test_webhooks import SECRET, deliver, event

pytestmark = pytest.mark.django_db(transaction=True)

BATCH_ROUTE = "GET /v1/batches/{id}"


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def worker(tmp_path, upstream):
    """Start ``manage.py run_worker`` on the test database (several may be started); each is stopped
    by its own pid at the end."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        environment = dashboard_env(
            tmp_path, DATABASE_URL=database_url(), OPENAI_BASE_URL=upstream.base_url, OPENAI_API_KEY=EMULATOR_KEY,
            OPENAI_TIMEOUT="15", DASHBOARD_NOTIFY_INTERNAL_HOSTS="127.0.0.1", DASHBOARD_NOTIFY_SEND_SECONDS="0.3",
            DASHBOARD_WORKER_HEARTBEAT_SECONDS="0.3", **env,
        )
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--no-reload", "--no-startup-delay", "--interval", "0.05", "-v", "0"],
            cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"worker-{len(started)}.log", "wb"),
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until(condition, timeout: float = 20.0, what: str = "") -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"waited {timeout:.0f} s for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def cancelled_upstream(emulator) -> str:
    """A batch the index holds as in progress while upstream it has been cancelled since."""
    batch_id = next(b["id"] for b in emulator.state.list_batches() if b["status"] == "in_progress")
    upsert_batches("default", [Batch.from_api(emulator.state.get_batch(batch_id))])
    emulator.state.cancel_batch(batch_id)
    emulator.state.advance(900)
    return batch_id


def status_of(batch_id: str) -> str:
    return BatchRecord.objects.get(project="default", batch_id=batch_id).status


def test_twenty_silent_receivers_do_not_delay_a_webhook_refresh(upstream, database_tasks, worker):
    batch_id = cancelled_upstream(upstream)
    with SlowReceiver(drip=None) as receiver:
        for n in range(20):
            batch_record(batch_id=f"batch_slow{n:02d}", status="failed", total=1)
            row = Notification.objects.create(project="default", batch_id=f"batch_slow{n:02d}", event="failed",
                                              recipient=f"slack:{receiver.url}", next_attempt_at=timezone.now())
            enqueue_send(row.pk)
        refresh_batch.enqueue("default", batch_id, "wh_urgent", "batch.cancelled")  # queued last
        worker()
        wait_until(lambda: status_of(batch_id) == "cancelled", what="the refresh")
        wait_until(lambda: Notification.objects.exclude(state__in=["pending", "sending"]).count()
                   + Notification.objects.filter(state="pending", attempts=1).count() >= 3, what="three sends")
        # Read while the receiver is still open: a send cut when it closes fails differently (ReadError).
        retried = Notification.objects.filter(attempts=1, state="pending").order_by("pk").first()
    refresh = DBTaskResult.objects.get(task_path="batches.index.refresh.refresh_batch")
    sends = DBTaskResult.objects.filter(task_path="batches.notify.tasks.notification_send", started_at__isnull=False)
    assert refresh.status == "SUCCESSFUL" and refresh.queue_name == "urgent"
    assert refresh.started_at < min(send.started_at for send in sends)  # served first, though queued last
    finished = [send for send in sends if send.finished_at]
    assert len(finished) >= 2
    for send in finished:  # each send ends near its 0.3 s deadline, far from the old 10 s per-read timeout
        assert (send.finished_at - send.started_at).total_seconds() < 3.0
    assert retried.last_error == f"The webhook at http://127.0.0.1:{receiver.url.split(':')[2].split('/')[0]}/…SLOW did not answer within 0.3 s."
    retry_task = DBTaskResult.objects.filter(status="READY", args_kwargs__args=[retried.pk]).exclude(run_after__year=9999).get()
    assert retry_task.priority == -10  # a retry goes after fresh work


def test_the_oldest_waiting_task_is_in_metrics_and_fails_readyz_past_the_threshold(database_tasks, settings):
    settings.DASHBOARD_READY_REQUIRE_WORKER = True
    settings.DASHBOARD_READY_REQUIRE_SYNC = False
    settings.DASHBOARD_READY_QUEUE_AGE_SECONDS = 120
    from batches.management.commands.run_worker import beat

    refresh_batch.enqueue("default", "batch_waiting", "", "")
    enqueued = DBTaskResult.objects.get().enqueued_at
    with time_machine.travel(enqueued + timedelta(seconds=300), tick=False):
        beat("worker-alive", timezone.now())  # a worker is alive; it just does not keep up
        body = Client().get("/readyz").json()
        metrics = Client().get("/metrics").content.decode()
    assert body["failing"] == ["queue"]
    assert body["checks"]["queue"]["problem"] == "the oldest task in queue “urgent” has waited 300s (allowed 120s)"
    assert body["checks"]["queue"]["oldest_wait_seconds"] == {"urgent": 300.0}
    assert 'dashboard_task_queue_oldest_wait_seconds{queue="urgent"} 300.0' in metrics


def test_a_worker_killed_mid_refresh_leaves_a_stuck_task_that_the_next_worker_runs_again(
    client, upstream, database_tasks, worker, settings
):
    settings.OPENAI_WEBHOOK_SECRET = SECRET
    settings.DASHBOARD_READY_REQUIRE_WORKER = True
    settings.DASHBOARD_READY_REQUIRE_SYNC = False
    settings.DASHBOARD_WORKER_HEARTBEAT_SECONDS = 0.3
    batch_id = cancelled_upstream(upstream)
    upstream.state.inject_fault(route=BATCH_ROUTE, delay=20.0, times=1)  # the first refresh hangs upstream
    body = event(batch_id, "batch.cancelled")
    stamp = int(time.time())
    assert deliver(client, body, timestamp=stamp, webhook_id="wh_kill").content == b"queued\n"

    upstream.state.reset_counts()
    first = worker()
    wait_until(lambda: upstream.state.counts.get(BATCH_ROUTE, 0) == 1, what="the refresh to reach the upstream")
    os.kill(first.pid, signal.SIGKILL)
    first.wait(10)

    task = DBTaskResult.objects.get(task_path="batches.index.refresh.refresh_batch")
    assert task.status == "RUNNING"  # nobody will finish it
    with time_machine.travel(timezone.now() + timedelta(seconds=5), tick=False):  # the heartbeat is stale now
        ready = client.get("/readyz").json()
        metrics = client.get("/metrics").content.decode()
    assert "dashboard_tasks_stuck 1.0" in metrics
    assert ready["checks"]["queue"]["stuck"] == 1
    assert "1 task stuck: its worker stopped" in ready["checks"]["queue"]["problem"]

    # The provider delivers again: the id was never counted as handled, but its refresh is still the
    # stuck task, which the next worker puts back: it is not queued a second time.
    assert deliver(client, body, timestamp=stamp, webhook_id="wh_kill").content == b"queued\n"
    assert not WebhookDelivery.objects.exists()
    assert DBTaskResult.objects.filter(task_path="batches.index.refresh.refresh_batch").count() == 1

    worker()
    wait_until(lambda: DBTaskResult.objects.filter(task_path="batches.index.refresh.refresh_batch", status="SUCCESSFUL").count() == 1,
               what="the refresh")
    task.refresh_from_db()
    assert task.status == "SUCCESSFUL" and len(task.worker_ids) == 2  # run again, by the second worker
    assert status_of(batch_id) == "cancelled"
    assert list(WebhookDelivery.objects.values_list("webhook_id", flat=True)) == ["wh_kill"]
    # Handled now: a third delivery is a replay.
    assert deliver(client, body, timestamp=stamp, webhook_id="wh_kill").content == b"replay\n"
    assert client.get("/readyz").json()["checks"]["queue"]["stuck"] == 0
