"""Notifications: "Notify me", project rules and their permissions, rows from index changes exactly once
(duplicate and racing triggers), the at-risk hook, the retry sweep, and the /notifications/ history."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from batches.index.flags import flagged_ids
from batches.index.signals import batches_changed, sync_pass_finished
from batches.models import BatchSample, Notification, NotificationRule, Watch
from batches.notify import rules
from batches.notify.rules import notification_record, notifications_for_changes, notify_at_risk
from batches.notify.tasks import deliver, send_due
from notify_helpers import batch_record
from tests.helpers import HTMX, at_once

pytestmark = pytest.mark.django_db

PROJECTS_TOML = """
[projects.alpha]
name = "Alpha"
api_key_env = "NOTIFY_TEST_KEY_ALPHA"
base_url = "http://127.0.0.1:9/v1"
operator_groups = ["alpha-ops"]

[projects.secret]
name = "Secret"
api_key_env = "NOTIFY_TEST_KEY_SECRET"
base_url = "http://127.0.0.1:9/v1"
viewer_groups = ["secret-team"]
operator_groups = ["secret-team"]
"""
READER = {"X-Forwarded-Email": "reader@example.com", "X-Forwarded-Groups": "viewers"}
OPERATOR = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "alpha-ops"}
SECRET_MEMBER = {"X-Forwarded-Email": "spy@example.com", "X-Forwarded-Groups": "secret-team"}


@pytest.fixture
def projects(write_projects, proxy_mode):
    write_projects(PROJECTS_TOML, NOTIFY_TEST_KEY_ALPHA="sk-alpha-test", NOTIFY_TEST_KEY_SECRET="sk-secret-test")


# -- "Notify me" ----------------------------------------------------------------------------------


def test_a_reader_may_watch_a_batch_and_is_redirected_back_to_it(client, projects):
    response = client.post("/projects/alpha/batches/batch_w1/watch/", {"action": "watch"}, headers=READER)
    assert response.status_code == 302
    assert response["Location"] == "/projects/alpha/batches/batch_w1/"
    watch = Watch.objects.get()
    assert (watch.project, watch.batch_id, watch.person, watch.email) == ("alpha", "batch_w1", "reader@example.com", "reader@example.com")


def test_watching_through_htmx_swaps_the_button_and_unwatching_removes_the_watch(client, projects):
    url = "/projects/alpha/batches/batch_w2/watch/"
    response = client.post(url, {"action": "watch"}, headers={**READER, **HTMX})
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert 'id="watch"' in body and "Stop notifying me" in body and "reader@example.com" in body
    assert Watch.objects.count() == 1
    client.post(url, {"action": "watch"}, headers={**READER, **HTMX})  # a double click watches once
    assert Watch.objects.count() == 1

    response = client.post(url, {"action": "unwatch"}, headers={**READER, **HTMX})
    assert "Notify me" in response.content.decode()
    assert not Watch.objects.exists()


def test_watching_needs_the_csrf_token(projects):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/projects/alpha/batches/batch_w3/watch/", {"action": "watch"}, headers=READER)
    assert response.status_code == 403
    assert not Watch.objects.exists()


def test_a_batch_of_a_hidden_project_cannot_be_watched(client, projects):
    response = client.post("/projects/secret/batches/batch_w4/watch/", {"action": "watch"}, headers=READER)
    assert response.status_code == 404
    assert "Secret" not in response.content.decode()
    assert not Watch.objects.exists()


def test_an_invalid_batch_id_is_404(client, projects):
    response = client.post("/projects/alpha/batches/bad%20id/watch/", {"action": "watch"}, headers=READER)
    assert response.status_code == 404


def test_without_sign_in_watching_asks_for_an_address_and_remembers_it(client, settings):
    settings.DASHBOARD_AUTH = "none"
    url = "/projects/default/batches/batch_w5/watch/"
    response = client.post(url, {"action": "watch"}, headers=HTMX)
    assert "Enter the email address to notify." in response.content.decode()
    assert 'type="email"' in response.content.decode()
    assert not Watch.objects.exists()

    response = client.post(url, {"action": "watch", "email": "demo@example.com"}, headers=HTMX)
    assert "Stop notifying me" in response.content.decode()
    assert Watch.objects.get().email == "demo@example.com"
    response = client.post(url, {"action": "unwatch"}, headers=HTMX)
    assert not Watch.objects.exists()


def test_the_watch_partial_says_a_finished_batch_has_nothing_left_to_notify(client, projects):
    batch_record(project="alpha", batch_id="batch_w6", status="completed")
    response = client.post("/projects/alpha/batches/batch_w6/watch/", {"action": "unwatch"}, headers={**READER, **HTMX})
    body = response.content.decode()
    assert "nothing left to notify about" in body
    assert "Notify me" not in body


# -- rules ----------------------------------------------------------------------------------------


def test_an_operator_adds_an_email_rule_and_a_slack_rule(client, projects):
    url = "/projects/alpha/notifications/"
    response = client.post(url, {"kind": "failed_or_expired", "channel": "email", "target": "oncall@example.com"}, headers=OPERATOR)
    assert response.status_code == 302
    response = client.post(
        url, {"kind": "failure_rate_above", "threshold": "12.5", "channel": "slack", "target": "https://hooks.slack.com/services/T1/B1/secretZZ"},
        headers={**OPERATOR, **HTMX},
    )
    body = response.content.decode()
    assert response.status_code == 200 and "<html" not in body
    rules = list(NotificationRule.objects.order_by("id").values_list("project", "kind", "threshold", "channel", "target", "created_by"))
    assert rules == [
        ("alpha", "failed_or_expired", None, "email", "oncall@example.com", "ops@example.com"),
        ("alpha", "failure_rate_above", 12.5, "slack", "https://hooks.slack.com/services/T1/B1/secretZZ", "ops@example.com"),
    ]
    page = client.get(url, headers=OPERATOR).content.decode()
    assert "oncall@example.com" in page
    assert "https://hooks.slack.com/…etZZ" in page and "T1/B1" not in page  # webhook URLs are secrets


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"kind": "failed_or_expired", "channel": "email", "target": "not-an-address"}, "Enter a valid email address."),
        ({"kind": "failed_or_expired", "channel": "slack", "target": "ftp://hooks.example.com/x"}, "Enter an https:// webhook URL."),
        ({"kind": "failure_rate_above", "channel": "email", "target": "a@example.com"}, "Give the failure rate"),
        ({"kind": "failure_rate_above", "threshold": "150", "channel": "email", "target": "a@example.com"}, "less than or equal to 100"),
        ({"kind": "failure_rate_above", "threshold": "-1", "channel": "email", "target": "a@example.com"}, "greater than or equal to 0"),
        ({"kind": "sometimes", "channel": "email", "target": "a@example.com"}, "Select a valid choice"),
    ],
)
def test_an_invalid_rule_is_refused_with_a_reason(client, projects, data, error):
    response = client.post("/projects/alpha/notifications/", data, headers=OPERATOR)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not NotificationRule.objects.exists()


def test_the_threshold_field_sits_under_the_failure_rate_kind_alone(client, projects):
    body = client.get("/projects/alpha/notifications/", headers=OPERATOR).content.decode()
    kinds = body.split('<div class="rule-kind">')[1:]
    values = [kind.split('value="', 1)[1].split('"', 1)[0] for kind in kinds]
    assert values == ["failed_or_expired", "at_risk", "failure_rate_above", "budget"]
    assert [('name="threshold"' in kind) for kind in kinds] == [False, False, True, False]
    assert '<div class="rule-kind-fields">' in kinds[2]
    assert re.search(r'<input type="radio" name="kind" value="failed_or_expired"[^>]* checked', kinds[0])
    # Channel and target apply to every kind: once each, outside the kinds.
    assert body.count('name="channel"') == 1 and body.count('name="target"') == 1
    assert 'name="channel"' not in "".join(kinds).split("</fieldset>")[0]


def test_a_reader_sees_the_rules_but_cannot_add_or_delete(client, projects):
    rule = NotificationRule.objects.create(project="alpha", kind="at_risk", channel="email", target="x@example.com", created_by="ops")
    page = client.get("/projects/alpha/notifications/", headers=READER)
    body = page.content.decode()
    assert page.status_code == 200
    assert "x@example.com" in body and "Add rule" not in body and "Delete" not in body
    response = client.post("/projects/alpha/notifications/", {"kind": "at_risk", "channel": "email", "target": "me@example.com"}, headers=READER)
    assert response.status_code == 403
    response = client.post(f"/projects/alpha/notifications/{rule.pk}/delete/", headers=READER)
    assert response.status_code == 403
    assert list(NotificationRule.objects.values_list("target", flat=True)) == ["x@example.com"]


def test_the_rules_of_a_hidden_project_are_404(client, projects):
    rule = NotificationRule.objects.create(project="secret", kind="at_risk", channel="email", target="x@example.com", created_by="spy")
    assert client.get("/projects/secret/notifications/", headers=OPERATOR).status_code == 404
    post = client.post("/projects/secret/notifications/", {"kind": "at_risk", "channel": "email", "target": "me@example.com"}, headers=OPERATOR)
    assert post.status_code == 404
    assert client.post(f"/projects/secret/notifications/{rule.pk}/delete/", headers=OPERATOR).status_code == 404
    # A rule id of another project, through a project the person operates: still not found.
    assert client.post(f"/projects/alpha/notifications/{rule.pk}/delete/", headers=OPERATOR).status_code == 404
    assert NotificationRule.objects.count() == 1


def test_an_operator_deletes_a_rule(client, projects):
    rule = NotificationRule.objects.create(project="alpha", kind="at_risk", channel="email", target="x@example.com", created_by="ops")
    response = client.post(f"/projects/alpha/notifications/{rule.pk}/delete/", headers={**OPERATOR, **HTMX})
    assert response.status_code == 200 and "No rules yet" in response.content.decode()
    assert not NotificationRule.objects.exists()


# -- from index changes to rows -------------------------------------------------------------------


def keys():
    return sorted(Notification.objects.values_list("batch_id", "event", "recipient"))


def test_changes_become_rows_for_watchers_and_matching_rules():
    NotificationRule.objects.create(project="default", kind="failed_or_expired", channel="email", target="oncall@example.com", created_by="ops")
    NotificationRule.objects.create(project="default", kind="failure_rate_above", threshold=10, channel="slack", target="https://hooks.example.com/a", created_by="ops")
    NotificationRule.objects.create(project="other", kind="failed_or_expired", channel="email", target="other@example.com", created_by="ops")
    Watch.objects.create(project="default", batch_id="batch_a", person="ann", email="ann@example.com")
    Watch.objects.create(project="default", batch_id="batch_b", person="oncall", email="oncall@example.com")
    batch_record(batch_id="batch_a", status="completed", total=10, completed=8, failed=2)  # 20 % failed
    batch_record(batch_id="batch_b", status="failed", total=0)
    batch_record(batch_id="batch_c", status="completed", total=10, completed=9, failed=1)  # 10 %: not above 10
    batch_record(batch_id="batch_d", status="in_progress")

    notifications_for_changes("default", {
        "batch_a": ("finalizing", "completed"),
        "batch_b": ("validating", "failed"),
        "batch_c": ("finalizing", "completed"),
        "batch_d": ("validating", "in_progress"),  # not finished: nobody is told
    })

    assert keys() == [
        ("batch_a", "completed", "email:ann@example.com"),
        ("batch_a", "failure_rate", "slack:https://hooks.example.com/a"),
        # The watcher and the rule name the same address for the same event: one row, one email.
        ("batch_b", "failed", "email:oncall@example.com"),
    ]
    assert all(row.state == "pending" and row.attempts == 0 for row in Notification.objects.all())


def test_a_rule_ignores_batches_that_finished_before_it_existed():
    """The first backfill brings years of history into the index; old failures are not news."""
    NotificationRule.objects.create(project="default", kind="failed_or_expired", channel="email", target="oncall@example.com", created_by="ops")
    long_ago = int((timezone.now() - timedelta(days=30)).timestamp())
    batch_record(batch_id="batch_old", status="failed", failed_at=long_ago)
    batch_record(batch_id="batch_new", status="failed")
    notifications_for_changes("default", {"batch_old": (None, "failed"), "batch_new": (None, "failed")})
    assert keys() == [("batch_new", "failed", "email:oncall@example.com")]


def test_duplicate_triggers_send_exactly_once(immediate_tasks, django_capture_on_commit_callbacks):
    """A webhook retried, an overlapping sync pass and a second instance all report the same change."""
    Watch.objects.create(project="default", batch_id="batch_dup", person="ann", email="ann@example.com")
    batch_record(batch_id="batch_dup", status="completed", total=2, completed=2)
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            batches_changed.send(sender=None, project="default", changes={"batch_dup": ("in_progress", "completed")})
    assert Notification.objects.count() == 1
    assert Notification.objects.get().state == "sent"
    assert [message.to for message in mail.outbox] == [["ann@example.com"]]


def test_the_unique_key_holds_when_two_inserts_race():
    now = timezone.now()
    first = notification_record("default", "batch_r", "failed", "email:a@example.com", "rule", now)
    second = notification_record("default", "batch_r", "failed", "email:a@example.com", "rule", now)
    assert first is not None and second is None
    assert Notification.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_processes_firing_the_same_change_at_once_produce_one_row_and_one_send(immediate_tasks):
    """Two workers (threads with their own database connections, as two processes would have) fire
    the same committed change at the same moment; the unique key lets one insert win, only the winner
    enqueues a send, and the claim lets one sender act."""
    NotificationRule.objects.create(project="default", kind="failed_or_expired", channel="email", target="oncall@example.com", created_by="ops")
    batch_record(batch_id="batch_race", status="expired", total=4, completed=1)
    created = at_once(lambda _: notifications_for_changes("default", {"batch_race": ("in_progress", "expired")}),
                      ["w1", "w2"], timeout=10)
    assert sorted(len(ids) for ids in created.values()) == [0, 1]
    row = Notification.objects.get()
    assert (row.event, row.recipient, row.state, row.attempts) == ("expired", "email:oncall@example.com", "sent", 1)
    assert [message.to for message in mail.outbox] == [["oncall@example.com"]]


def test_a_row_is_claimed_by_one_sender_only():
    row_id = notification_record("default", "batch_claim", "completed", "email:a@example.com", "", timezone.now())
    assert deliver(row_id) == "sent"
    assert deliver(row_id) == "not claimed"
    assert send_due(now=timezone.now() + timedelta(hours=1)) == {"rescued": 0}
    assert len(mail.outbox) == 1


def test_the_sweep_rescues_a_row_whose_worker_died_mid_send():
    now = timezone.now()
    row_id = notification_record("default", "batch_stuck", "completed", "email:a@example.com", "", now)
    Notification.objects.filter(pk=row_id).update(state="sending", attempts=1, claimed_at=now)
    assert send_due(now=now + timedelta(minutes=1)) == {"rescued": 0}  # a worker may still be sending
    assert send_due(now=now + timedelta(minutes=11)) == {"rescued": 1, "sent": 1}
    row = Notification.objects.get()
    assert (row.state, row.attempts) == ("sent", 2)


def test_a_receiver_error_never_breaks_the_sender_of_the_signal(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(rules, "notifications_for_changes", broken)
    with caplog.at_level(logging.ERROR, logger=rules.logger.name):
        answers = batches_changed.send(sender=None, project="default", changes={"batch_x": (None, "failed")})
    assert (rules.on_batches_changed, None) in answers  # the receiver ran and returned
    [record] = [r for r in caplog.records if r.name == rules.logger.name]
    assert record.getMessage() == "notifications for 1 change(s) in project default could not be recorded"
    assert record.exc_info[0] is RuntimeError


# -- at risk --------------------------------------------------------------------------------------


def test_the_at_risk_hook_notifies_each_rule_recipient_once_per_batch():
    NotificationRule.objects.create(project="default", kind="at_risk", channel="email", target="oncall@example.com", created_by="ops")
    NotificationRule.objects.create(project="default", kind="failed_or_expired", channel="email", target="x@example.com", created_by="ops")
    assert len(notify_at_risk("default", ["batch_slow"])) == 1
    assert notify_at_risk("default", ["batch_slow"]) == []  # every later pass may report it again
    assert keys() == [("batch_slow", "at_risk", "email:oncall@example.com")]


def test_the_at_risk_verdict_the_rules_use_compares_the_pace_with_the_expiry():
    now = timezone.now()
    in_an_hour = int((now + timedelta(hours=1)).timestamp())
    for batch_id, done_now in (("batch_slow", 110), ("batch_fast", 400)):
        batch_record(batch_id=batch_id, status="in_progress", total=1000, completed=done_now, expires_at=in_an_hour, last_synced=now)
        BatchSample.objects.create(project="default", batch_id=batch_id, taken_at=now - timedelta(minutes=10), status="in_progress", total_requests=1000, completed_requests=100)
        BatchSample.objects.create(project="default", batch_id=batch_id, taken_at=now, status="in_progress", total_requests=1000, completed_requests=done_now)
    # Only one sample, and no progress at all: no verdict (the latter is "stalled", another flag).
    batch_record(batch_id="batch_new", status="in_progress", total=1000, expires_at=in_an_hour)
    BatchSample.objects.create(project="default", batch_id="batch_new", taken_at=now, status="in_progress", total_requests=1000)
    batch_record(batch_id="batch_stuck", status="in_progress", total=1000, completed=5, expires_at=in_an_hour, last_synced=now)
    for minutes in (10, 0):
        BatchSample.objects.create(project="default", batch_id="batch_stuck", taken_at=now - timedelta(minutes=minutes), status="in_progress", total_requests=1000, completed_requests=5)
    # 10 requests in 10 minutes leaves 890 for 60 minutes: at risk. 300 in 10 minutes: fine.
    assert flagged_ids("default", "at-risk", now=now.timestamp()) == {"batch_slow"}


def late_batch(batch_id: str = "batch_late") -> None:
    """An unfinished batch whose pace (10 requests in 5 minutes) cannot finish 1,000 before its expiry."""
    now = timezone.now()
    batch_record(batch_id=batch_id, status="in_progress", total=1000, completed=10, last_synced=now, expires_at=int((now + timedelta(minutes=30)).timestamp()))
    for minutes, done in ((5, 0), (0, 10)):
        BatchSample.objects.create(project="default", batch_id=batch_id, taken_at=now - timedelta(minutes=minutes), status="in_progress", total_requests=1000, completed_requests=done)


def test_a_finished_sync_pass_tells_the_at_risk_rules_through_its_signal():
    NotificationRule.objects.create(project="default", kind="at_risk", channel="email", target="oncall@example.com", created_by="ops")
    late_batch()
    answers = sync_pass_finished.send(sender="sync", project="default")
    assert answers == [(rules.on_sync_pass_finished, None)]
    assert keys() == [("batch_late", "at_risk", "email:oncall@example.com")]


def test_an_at_risk_bug_is_logged_and_never_raised_into_the_sync(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(rules, "notify_at_risk", broken)
    with caplog.at_level(logging.ERROR, logger=rules.logger.name):
        sync_pass_finished.send(sender="sync", project="default")
    [record] = [r for r in caplog.records if r.name == rules.logger.name]
    assert record.getMessage() == "at-risk notifications for project default could not be recorded"
    assert record.exc_info[0] is RuntimeError


def test_the_sweep_command_raises_at_risk_notifications_and_sends_them():
    from django.core.management import call_command

    NotificationRule.objects.create(project="default", kind="at_risk", channel="email", target="oncall@example.com", created_by="ops")
    now = timezone.now()
    batch_record(batch_id="batch_late", status="in_progress", total=1000, completed=10, last_synced=now, expires_at=int((now + timedelta(minutes=30)).timestamp()))
    for minutes, done in ((5, 0), (0, 10)):
        BatchSample.objects.create(project="default", batch_id="batch_late", taken_at=now - timedelta(minutes=minutes), status="in_progress", total_requests=1000, completed_requests=done)
    call_command("send_notifications", verbosity=0)
    call_command("send_notifications", verbosity=0)
    row = Notification.objects.get()
    assert (row.event, row.state) == ("at_risk", "sent")
    assert len(mail.outbox) == 1
    assert "is at risk" in mail.outbox[0].body


# -- the history page -----------------------------------------------------------------------------


def test_the_history_shows_watches_and_rows_of_visible_projects_only(client, projects):
    now = timezone.now()
    Watch.objects.create(project="alpha", batch_id="batch_mine", person="reader@example.com", email="reader@example.com")
    Watch.objects.create(project="alpha", batch_id="batch_theirs", person="other@example.com", email="other@example.com")
    Watch.objects.create(project="secret", batch_id="batch_hidden_watch", person="reader@example.com", email="reader@example.com")
    notification_record("alpha", "batch_sent", "completed", "email:reader@example.com", "watch", now)
    notification_record("secret", "batch_hidden", "failed", "email:spy@example.com", "rule", now)
    Notification.objects.filter(batch_id="batch_sent").update(state="sent", attempts=1, sent_at=now)

    body = client.get("/notifications/", headers=READER).content.decode()
    assert "batch_mine" in body and "batch_theirs" not in body and "batch_hidden_watch" not in body
    assert "batch_sent" in body and "batch_hidden" not in body and "Secret" not in body

    member = client.get("/notifications/", headers=SECRET_MEMBER).content.decode()
    assert "batch_hidden" in member and "batch_sent" in member
    filtered = client.get("/notifications/?project=secret", headers=SECRET_MEMBER).content.decode()
    assert "batch_hidden" in filtered and "batch_sent" not in filtered
    # Asking for a hidden project filters nothing and reveals nothing.
    sneaky = client.get("/notifications/?project=secret", headers=READER).content.decode()
    assert "batch_hidden" not in sneaky and "batch_sent" in sneaky


def test_the_history_is_paginated_and_filterable_by_state_with_htmx_partials(client, settings):
    settings.DASHBOARD_AUTH = "none"
    now = timezone.now()
    for number in range(55):
        notification_record("default", f"batch_p{number:02d}", "completed", "email:a@example.com", "", now)
    Notification.objects.filter(batch_id="batch_p00").update(state="failed", attempts=5, last_error="The mail server answered 550: no such user")

    first = client.get("/notifications/").content.decode()
    assert "Page 1 of 2 (55 notifications)" in first
    second = client.get("/notifications/?page=2", headers=HTMX).content.decode()
    assert "<html" not in second and 'id="history-table"' in second and "Page 2 of 2" in second

    failed = client.get("/notifications/?state=failed").content.decode()
    assert "batch_p00" in failed and "batch_p01" not in failed
    assert "no such user" in failed


def test_the_watch_partial_renders_on_a_batch_page_context(rf, projects):
    """What the batch page's ``{% include "batches/_watch.html" %}`` renders, from its own context."""
    from django.contrib.auth.models import AnonymousUser, User
    from django.template.loader import render_to_string

    from batches.projects import get_project
    from batches.upstream.types import Batch

    user = User.objects.create(username="reader@example.com")
    Watch.objects.create(project="alpha", batch_id="batch_page", person="reader@example.com", email="reader@example.com")
    request = rf.get("/projects/alpha/batches/batch_page/")
    request.user, request.session = user, {}
    running = Batch.from_api({"id": "batch_page", "status": "in_progress"})
    html = render_to_string("batches/_watch.html", {"project": get_project("alpha"), "batch": running}, request=request)
    assert 'action="/projects/alpha/batches/batch_page/watch/"' in html
    assert "csrfmiddlewaretoken" in html
    assert "Stop notifying me" in html and 'hx-target="#watch"' in html

    request.user = AnonymousUser()
    other = Batch.from_api({"id": "batch_other", "status": "validating"})
    html = render_to_string("batches/_watch.html", {"project": get_project("alpha"), "batch": other}, request=request)
    assert "Notify me" in html and 'type="email"' in html
