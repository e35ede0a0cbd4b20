"""POST /webhooks/openai/<project>/: Standard Webhooks signatures checked before anything happens;
a verified batch event is recorded once and queues a refresh that updates the index.

Signatures here are computed by hand (HMAC-SHA256 over ``id.timestamp.body`` with the base64-decoded
``whsec_`` key, NOTES.md §6.4), independently of the ``standardwebhooks`` package the view uses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import signal
import time

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from batches.index.signals import batches_changed
from batches.index.store import upsert_batches
from batches.models import BatchRecord, BatchSample, WebhookDelivery
from batches.upstream import Batch

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"fedcba9876543210fedcba9876543210").decode()
URL = "/webhooks/openai/default/"
REFRESH = "batches.index.refresh.refresh_batch"


def sign(body: bytes, secret: str, webhook_id: str, timestamp: int) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def event(batch_id: str = "batch_abc123", kind: str = "batch.completed") -> bytes:
    return json.dumps(
        {"id": "evt_1", "object": "event", "type": kind, "created_at": int(time.time()), "data": {"id": batch_id}}
    ).encode()


def deliver(client, body: bytes, *, secret: str = SECRET, webhook_id: str = "wh_1", timestamp: int | None = None,
            signature: str | None = None, url: str = URL):
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature if signature is not None else sign(body, secret, webhook_id, timestamp),
    }
    return client.post(url, data=body, content_type="application/json", headers=headers)


@pytest.fixture
def secret(settings):
    settings.OPENAI_WEBHOOK_SECRET = SECRET
    return SECRET


def our_log_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("batches")]


def assert_no_effect():
    assert not WebhookDelivery.objects.exists()
    assert not DBTaskResult.objects.exists()
    assert not BatchRecord.objects.exists()


# -- refused: 400, no side effect, one log line without secrets ------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case",
    ["forged", "stale", "future", "missing signature", "no v1 comma", "bad base64", "garbage", "empty"],
)
def test_a_delivery_that_does_not_verify_is_refused_without_effect(client, secret, caplog, case):
    caplog.set_level(logging.INFO)
    body = event()
    now = int(time.time())
    kwargs = {
        "forged": {"secret": OTHER_SECRET},
        "stale": {"timestamp": now - 301 - 5},
        "future": {"timestamp": now + 301 + 5},
        "missing signature": {"signature": ""},
        "no v1 comma": {"signature": "v1"},
        "bad base64": {"signature": "v1,@@@not-base64@@@"},
        "garbage": {"signature": "a,b,c d"},
        "empty": {"signature": " "},
    }[case]

    response = deliver(client, body, **kwargs)

    assert response.status_code == 400
    assert_no_effect()
    lines = our_log_lines(caplog)
    assert len(lines) == 1 and "webhook refused" in lines[0]
    assert SECRET not in lines[0] and SECRET.removeprefix("whsec_") not in lines[0]
    assert "default" not in response.content.decode()  # the reason is in the log, not the answer


@pytest.mark.django_db
def test_an_unknown_project_is_refused(client, secret, caplog):
    response = deliver(client, event(), url="/webhooks/openai/nope/")
    assert response.status_code == 400
    assert_no_effect()
    assert len(our_log_lines(caplog)) == 1 and "unknown project" in our_log_lines(caplog)[0]


@pytest.mark.django_db
def test_a_project_without_a_secret_refuses_every_delivery(client, settings, caplog):
    settings.OPENAI_WEBHOOK_SECRET = ""
    response = deliver(client, event())
    assert response.status_code == 400
    assert_no_effect()
    assert len(our_log_lines(caplog)) == 1 and "no webhook secret" in our_log_lines(caplog)[0]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'{"data": {"id": "batch_1"}}', b'{"type": "batch.completed", "data": {}}',
     b'{"type": "batch.completed", "data": {"id": "../etc"}}', b"\xff\xfe"],
)
def test_a_signed_payload_that_is_not_a_usable_event_is_refused(client, secret, body):
    assert deliver(client, body).status_code == 400
    assert_no_effect()


@pytest.mark.django_db
def test_only_post_is_accepted(client, secret):
    assert client.get(URL).status_code == 405


# -- accepted -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_valid_batch_event_is_queued_on_the_urgent_queue_without_calling_upstream(client, secret, upstream, caplog):
    caplog.set_level(logging.INFO)
    upstream.state.reset_counts()
    started = time.monotonic()

    response = deliver(client, event("batch_abc123"))

    assert response.status_code == 200
    assert time.monotonic() - started < 1.0
    assert upstream.state.total_requests() == 0  # the refresh is a task, not part of the request
    assert not WebhookDelivery.objects.exists()  # handled only once the refresh has committed
    task = DBTaskResult.objects.get()
    assert task.task_path == "batches.index.refresh.refresh_batch"
    assert task.args_kwargs["args"] == ["default", "batch_abc123", "wh_1", "batch.completed"]
    assert (task.queue_name, task.priority) == ("urgent", 50)
    assert len(our_log_lines(caplog)) == 1


@pytest.mark.django_db
def test_several_signatures_pass_when_one_of_them_is_valid(client, secret):
    body = event()
    now = int(time.time())
    good = sign(body, SECRET, "wh_1", now)
    bad = sign(body, OTHER_SECRET, "wh_1", now)
    response = deliver(client, body, timestamp=now, signature=f"v2,{good[3:]} {bad} {good}")
    assert response.status_code == 200 and response.content == b"queued\n"
    assert DBTaskResult.objects.count() == 1


@pytest.mark.django_db(transaction=True)  # the worker closes its connection when done
def test_a_delivery_counts_as_handled_only_once_its_refresh_has_committed(client, secret, upstream):
    batch_id = index_running_batch(upstream)
    body = event(batch_id, "batch.cancelled")
    now = int(time.time())
    first = deliver(client, body, timestamp=now)
    # Delivered again before the refresh ran (a provider's quick retry): that refresh is still queued,
    # so it is not queued twice.
    again = deliver(client, body, timestamp=now)
    assert first.content == again.content == b"queued\n"
    assert DBTaskResult.objects.filter(task_path=REFRESH).count() == 1
    run_worker_batch()
    assert list(WebhookDelivery.objects.values_list("webhook_id", "batch_id")) == [("wh_1", batch_id)]
    # Now it is handled: a third delivery is a replay and queues nothing.
    third = deliver(client, body, timestamp=now)
    assert third.status_code == 200 and third.content == b"replay\n"
    assert DBTaskResult.objects.filter(task_path=REFRESH).count() == 1


@pytest.mark.django_db(transaction=True)  # the worker closes its connection when done
def test_a_refresh_that_fails_upstream_leaves_the_delivery_unhandled(client, secret, upstream):
    batch_id = index_running_batch(upstream)
    upstream.state.inject_fault(route="GET /v1/batches/{id}", status=500, times=None)
    deliver(client, event(batch_id, "batch.cancelled"))
    run_worker_batch()
    assert DBTaskResult.objects.filter(task_path=REFRESH).get().status == "FAILED"
    assert not WebhookDelivery.objects.exists()
    upstream.state.clear_faults()
    assert deliver(client, event(batch_id, "batch.cancelled")).content == b"queued\n"  # the provider's retry
    run_worker_batch()
    assert BatchRecord.objects.get(batch_id=batch_id).status == "cancelled"
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db
def test_an_event_that_is_not_about_a_batch_is_ignored_with_200(client, secret):
    response = deliver(client, event(kind="response.completed"))
    assert response.status_code == 200 and response.content == b"ignored\n"
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_the_webhook_needs_no_sso_identity_and_no_csrf_token(secret, settings):
    from django.test import Client

    settings.DASHBOARD_AUTH = "proxy"  # every other path would answer 401 without the proxy's header
    response = deliver(Client(enforce_csrf_checks=True), event())
    assert response.status_code == 200
    assert "sessionid" not in response.cookies


@pytest.mark.django_db
def test_each_project_verifies_with_its_own_secret(client, write_projects):
    write_projects(
        '[projects.alpha]\napi_key_env = "KEY_A"\nwebhook_secret_env = "HOOK_A"\n'
        '[projects.beta]\napi_key_env = "KEY_B"\n',
        KEY_A="sk-a", KEY_B="sk-b", HOOK_A=SECRET,
    )

    assert deliver(client, event(), url="/webhooks/openai/alpha/").status_code == 200
    assert deliver(client, event(), url="/webhooks/openai/alpha/", secret=OTHER_SECRET, webhook_id="wh_2").status_code == 400
    assert deliver(client, event(), url="/webhooks/openai/beta/", webhook_id="wh_3").status_code == 400
    assert deliver(client, event(), url="/webhooks/openai/default/", webhook_id="wh_4").status_code == 400
    assert [task.args_kwargs["args"][:3] for task in DBTaskResult.objects.all()] == [["alpha", "batch_abc123", "wh_1"]]


# -- the refresh --------------------------------------------------------------------------------


def run_worker_batch() -> None:
    """``manage.py run_worker --batch``: every queued task (the urgent queue first), then exit."""
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT)}
    try:
        call_command("run_worker", "--batch", "--no-startup-delay", "--no-reload", stdout=io.StringIO(), stderr=io.StringIO())
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)


def index_running_batch(upstream) -> str:
    """A batch the index holds as in progress, then cancelled upstream and settled."""
    batch_id = next(b["id"] for b in upstream.state.list_batches() if b["status"] == "in_progress")
    upsert_batches("default", [Batch.from_api(upstream.state.get_batch(batch_id))])
    upstream.state.cancel_batch(batch_id)
    upstream.state.advance(900)
    assert upstream.state.get_batch(batch_id)["status"] == "cancelled"
    return batch_id


@pytest.mark.django_db
def test_a_valid_event_leads_to_the_batch_being_retrieved_and_updated_in_the_index(
    client, secret, upstream, settings, django_capture_on_commit_callbacks, immediate_tasks
):
    batch_id = index_running_batch(upstream)
    upstream.state.reset_counts()
    received = []

    def receiver(sender, project, changes, **kwargs):
        received.append((sender, project, changes))

    batches_changed.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(client, event(batch_id, "batch.cancelled"))
    finally:
        batches_changed.disconnect(receiver)

    assert response.status_code == 200
    assert upstream.state.counts["GET /v1/batches/{id}"] == 1
    assert BatchRecord.objects.get(batch_id=batch_id).status == "cancelled"
    assert BatchSample.objects.filter(batch_id=batch_id).latest("taken_at").status == "cancelled"
    assert received == [("webhook", "default", {batch_id: ("in_progress", "cancelled")})]


@pytest.mark.django_db(transaction=True)
def test_the_database_worker_runs_the_queued_refresh(client, secret, upstream):
    batch_id = index_running_batch(upstream)
    assert deliver(client, event(batch_id, "batch.cancelled")).status_code == 200
    assert BatchRecord.objects.get(batch_id=batch_id).status == "in_progress"

    run_worker_batch()

    assert BatchRecord.objects.get(batch_id=batch_id).status == "cancelled"
    assert DBTaskResult.objects.get(task_path="batches.index.refresh.refresh_batch").status == "SUCCESSFUL"
