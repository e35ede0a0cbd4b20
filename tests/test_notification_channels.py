"""Notifications leave the dashboard for real: email to a real SMTP server (aiosmtpd) and a
Slack-style JSON POST to a real HTTP receiver, both on loopback; a receiver that keeps failing is
retried with backoff, then shown as failed on /notifications/."""

from __future__ import annotations

from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from batches.index.signals import batches_changed
from batches.models import Notification, NotificationRule, Watch
from batches.notify.tasks import send_due
from notify_helpers import DATABASE, SMTPRecorder, WebhookReceiver, batch_record, task_backend
from servers import free_port

pytestmark = pytest.mark.django_db

PUBLIC = "https://dash.example.com/batch-dashboard"


@pytest.fixture(autouse=True)
def local_receivers(settings):
    """The receivers here listen on 127.0.0.1 over http: the operator setting for receivers inside the
    network names that host (by default loopback and http:// are refused, tests/test_notify_egress.py)."""
    settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = ["127.0.0.1"]


@pytest.fixture
def database_tasks(settings):
    with task_backend(settings, DATABASE):
        yield


@pytest.fixture
def smtp(settings):
    """A real SMTP server on a concrete free loopback port, and Django's SMTP backend pointed at it."""
    recorder = SMTPRecorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "use_tls": False, "timeout": 5},
        }
    }
    settings.DEFAULT_FROM_EMAIL = "batches@example.com"
    settings.DASHBOARD_PUBLIC_URL = PUBLIC
    try:
        yield recorder
    finally:
        controller.stop()


def trigger(capture, project: str, changes: dict) -> None:
    """What the sync or a webhook does after committing an index change."""
    with capture(execute=True):
        batches_changed.send(sender=None, project=project, changes=changes)


def test_a_watcher_gets_an_email_through_a_real_smtp_server_when_the_batch_completes(
    smtp, immediate_tasks, django_capture_on_commit_callbacks
):
    batch_record(batch_id="batch_mail1", status="completed", total=10, completed=9, failed=1)
    Watch.objects.create(project="default", batch_id="batch_mail1", person="ann@example.com", email="ann@example.com")

    trigger(django_capture_on_commit_callbacks, "default", {"batch_mail1": ("finalizing", "completed")})

    assert len(smtp.messages) == 1
    envelope = smtp.messages[0]
    assert envelope.rcpt_tos == ["ann@example.com"]
    assert envelope.mail_from == "batches@example.com"
    message = message_from_bytes(envelope.content, policy=default_policy)
    assert message["Subject"] == "[Default] Batch batch_mail1: completed"
    body = message.get_content()
    assert "Batch batch_mail1 completed: 9 of 10 requests succeeded, 1 failed." in body
    assert "you asked to be notified when this batch finishes" in body
    assert f"{PUBLIC}/projects/default/batches/batch_mail1/" in body
    row = Notification.objects.get()
    assert (row.event, row.recipient, row.state, row.attempts) == ("completed", "email:ann@example.com", "sent", 1)
    assert row.sent_at is not None


def test_a_slack_rule_posts_json_text_with_the_batch_link_to_the_webhook(
    settings, immediate_tasks, django_capture_on_commit_callbacks
):
    settings.DASHBOARD_PUBLIC_URL = PUBLIC
    settings.DASHBOARD_DEFAULT_PROJECT_NAME = "Ops <!channel> & co"
    with WebhookReceiver([200]) as receiver:
        NotificationRule.objects.create(
            project="default", kind="failed_or_expired", channel="slack", target=receiver.url, created_by="ops@example.com"
        )
        batch_record(batch_id="batch_slack1", status="expired", total=100, completed=40, failed=0)

        trigger(django_capture_on_commit_callbacks, "default", {"batch_slack1": ("in_progress", "expired")})

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/services/T000/B000/XXXX"
    assert request["headers"]["Content-Type"] == "application/json"
    text = request["json"]["text"]
    assert set(request["json"]) == {"text"}
    assert "Batch batch_slack1 expired before it finished: 40 of 100 requests completed" in text
    assert f"{PUBLIC}/projects/default/batches/batch_slack1/" in text
    # Slack control sequences in upstream or configured names are escaped, never pinging a channel.
    assert "<!channel>" not in text and "&lt;!channel&gt; &amp; co" in text
    assert Notification.objects.get().state == "sent"


def test_a_failing_receiver_is_retried_with_backoff_then_shown_as_failed(
    client, settings, immediate_tasks, django_capture_on_commit_callbacks
):
    settings.DASHBOARD_NOTIFY_MAX_ATTEMPTS = 3
    with WebhookReceiver([500]) as receiver:
        NotificationRule.objects.create(
            project="default", kind="failed_or_expired", channel="slack", target=receiver.url, created_by="ops@example.com"
        )
        batch_record(batch_id="batch_fail1", status="failed", total=5)
        start = timezone.now()

        trigger(django_capture_on_commit_callbacks, "default", {"batch_fail1": ("validating", "failed")})
        row = Notification.objects.get()
        assert (row.state, row.attempts, len(receiver.requests)) == ("pending", 1, 1)
        assert "answered HTTP 500" in row.last_error
        first_retry = row.next_attempt_at
        assert timedelta(seconds=29) < first_retry - start < timedelta(seconds=40)

        # Not due yet: the sweep leaves it alone.
        assert send_due(now=first_retry - timedelta(seconds=1)) == {"rescued": 0}
        assert len(receiver.requests) == 1
        send_due(now=first_retry + timedelta(seconds=1))
        row.refresh_from_db()
        assert (row.state, row.attempts) == ("pending", 2)
        assert row.next_attempt_at - first_retry > timedelta(minutes=1)  # backoff grows: 30 s, then 2 min
        send_due(now=row.next_attempt_at)
        row.refresh_from_db()
        assert (row.state, row.attempts, len(receiver.requests)) == ("failed", 3, 3)
        # Given up: later sweeps do not send again.
        send_due(now=row.next_attempt_at + timedelta(days=1))
        assert len(receiver.requests) == 3

    body = client.get("/notifications/").content.decode()
    assert "batch_fail1" in body
    assert "notification-state-failed" in body
    assert "answered HTTP 500" in body
    assert "XXXX" in body and "/services/T000/B000/XXXX" not in body  # the webhook URL is a secret: masked


@pytest.mark.django_db(transaction=True)  # the worker closes its connection when done: no test transaction around it
def test_the_trigger_only_queues_work_and_the_db_worker_sends_it(
    smtp, database_tasks, django_capture_on_commit_callbacks
):
    batch_record(batch_id="batch_q1", status="completed", total=3, completed=3)
    Watch.objects.create(project="default", batch_id="batch_q1", person="bo@example.com", email="bo@example.com")

    trigger(django_capture_on_commit_callbacks, "default", {"batch_q1": ("in_progress", "completed")})

    # The page or webhook that caused the change waited for a database insert, not for the mail server.
    assert smtp.messages == []
    assert Notification.objects.get().state == "pending"
    assert DBTaskResult.objects.filter(task_path__startswith="batches.notify.").count() == 1

    call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)

    assert [envelope.rcpt_tos for envelope in smtp.messages] == [["bo@example.com"]]
    assert Notification.objects.get().state == "sent"


@pytest.mark.django_db(transaction=True)
def test_with_a_deferring_backend_a_failed_send_is_requeued_for_its_retry_time(
    settings, database_tasks, django_capture_on_commit_callbacks
):
    with WebhookReceiver([503]) as receiver:
        NotificationRule.objects.create(
            project="default", kind="failed_or_expired", channel="slack", target=receiver.url, created_by="ops@example.com"
        )
        batch_record(batch_id="batch_d1", status="failed")
        trigger(django_capture_on_commit_callbacks, "default", {"batch_d1": ("validating", "failed")})
        call_command("db_worker", batch=True, startup_delay=False, reload=False, verbosity=0)

    row = Notification.objects.get()
    assert (row.state, row.attempts, len(receiver.requests)) == ("pending", 1, 1)
    retry = DBTaskResult.objects.filter(status="READY").get()
    assert retry.run_after == row.next_attempt_at
    assert retry.args_kwargs["args"] == [row.pk]


def test_an_unreachable_mail_server_is_recorded_as_a_retry_with_a_sentence(settings, immediate_tasks, django_capture_on_commit_callbacks):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": free_port(), "use_tls": False, "timeout": 2},  # nothing listens
        }
    }
    batch_record(batch_id="batch_nomail", status="completed", total=1, completed=1)
    Watch.objects.create(project="default", batch_id="batch_nomail", person="ann", email="ann@example.com")
    trigger(django_capture_on_commit_callbacks, "default", {"batch_nomail": ("in_progress", "completed")})
    row = Notification.objects.get()
    assert (row.state, row.attempts) == ("pending", 1)
    assert row.last_error.startswith("The mail server could not be reached")
