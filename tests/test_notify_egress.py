"""Issue #23 item 1: a notification URL may not reach internal addresses, checked when the rule is saved
and again when the worker sends; no credentials in URLs, no redirects followed, https only unless the
operator names a host as internal; a receiver's reply is logged, never shown; every send has a total
deadline. Receivers are real HTTP servers on loopback (which is exactly what is refused by default)."""

from __future__ import annotations

import html
import logging
import time

import pytest
from django.utils import timezone

from batches.models import Notification, NotificationRule
from batches.notify import egress
from batches.notify.channels import mask_url, recipient_label
from batches.notify.forms import RuleForm
from batches.notify.tasks import deliver
from notify_helpers import SlowReceiver, WebhookReceiver, batch_record
from tests.helpers import LoopbackHTTP, QuietHandler

pytestmark = pytest.mark.django_db


def form_error(target: str) -> str:
    form = RuleForm({"kind": "failed_or_expired", "channel": "slack", "target": target}, project="default")
    assert not form.is_valid()
    return " ".join(form.errors["target"])


def queued(target: str, batch_id: str = "batch_egress") -> Notification:
    batch_record(batch_id=batch_id, status="failed", total=5)
    return Notification.objects.create(
        project="default", batch_id=batch_id, event="failed", recipient=f"slack:{target}", next_attempt_at=timezone.now()
    )


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://127.0.0.1/services/x", "127.0.0.1 is a loopback address"),
        ("https://[::1]/services/x", "::1 is a loopback address"),
        ("https://0.0.0.0/services/x", "0.0.0.0 is a unspecified address"),
        ("https://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
        ("https://10.1.2.3/hook", "10.1.2.3 is a private address"),
        ("https://192.168.0.10/hook", "192.168.0.10 is a private address"),
        ("https://[::ffff:127.0.0.1]/hook", "is a loopback address"),
        ("https://[2002:7f00:1::]/hook", "is a loopback address"),  # 6to4 around 127.0.0.1
        ("https://224.0.0.251/hook", "224.0.0.251 is a multicast address"),
        ("https://100.64.0.1/hook", "100.64.0.1 is a non-public address"),
        ("https://localhost/hook", "localhost resolves to 127.0.0.1, a loopback address"),
        ("http://hooks.slack.com/services/x", "Only https:// webhook URLs are allowed"),
        ("https://user:secret@hooks.slack.com/services/x", "may not carry a user name or password"),
        ("https://hooks.slack.com:99999/x", "not a valid URL"),
    ],
)
def test_a_rule_pointing_inside_the_network_is_refused_when_saved(url, says):
    assert says in form_error(url)


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1"])
def test_numeric_spellings_of_loopback_are_refused_once_resolved(host):
    """Django's URL validator already turns these away on the form; a row that holds one anyway is
    refused at send, because the resolved address is what is judged."""
    with pytest.raises(egress.EgressRefused) as refused:
        egress.check_url_now(f"https://{host}/hook")
    assert str(refused.value) == f"{host} resolves to 127.0.0.1, a loopback address; notifications only go to public hosts."


def test_a_public_https_url_is_accepted_when_saved():
    # hooks.slack.com does not resolve on this machine: it is checked again at every send.
    form = RuleForm({"kind": "failed_or_expired", "channel": "slack", "target": "https://hooks.slack.com/services/T/B/x"}, project="default")
    assert form.is_valid(), form.errors


def test_the_allow_list_is_the_strict_mode(settings):
    settings.DASHBOARD_NOTIFY_ALLOWED_HOSTS = ["hooks.slack.com", ".chat.example.com"]
    assert "may only be sent to hooks.slack.com, .chat.example.com" in form_error("https://evil.example.net/x")
    assert "is not one of them" in form_error("https://slack.com.evil.example.net/x")
    for ok in ("https://hooks.slack.com/services/x", "https://team.chat.example.com/hooks/x"):
        form = RuleForm({"kind": "failed_or_expired", "channel": "slack", "target": ok}, project="default")
        assert form.is_valid(), (ok, form.errors)


def test_the_operator_page_shows_the_refusal_and_saves_nothing(client):
    response = client.post("/projects/default/notifications/", {
        "kind": "failed_or_expired", "channel": "slack", "target": "https://169.254.169.254/latest/meta-data/iam",
    })
    assert response.status_code == 400
    assert "169.254.169.254 is a link-local address; notifications only go to public hosts." in html.unescape(response.content.decode())
    assert not NotificationRule.objects.exists()


def test_by_default_the_worker_refuses_a_loopback_receiver_and_gives_up_at_once():
    """A rule saved before these checks existed (or a row written by hand) still cannot reach loopback."""
    with WebhookReceiver([200]) as receiver:
        row = queued(receiver.url)
        assert deliver(row.pk) == "failed"
    row.refresh_from_db()
    assert receiver.requests == []
    assert (row.state, row.attempts) == ("failed", 1)  # a refusal is not retried
    assert "Only https:// webhook URLs are allowed; 127.0.0.1 is not one of the internal hosts" in row.last_error


def test_at_send_a_name_is_resolved_and_refused_when_it_points_inside(settings):
    with WebhookReceiver([200]) as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = []
        row = queued(f"https://localhost:{port}/services/x")
        assert deliver(row.pk) == "failed"
    assert receiver.requests == []
    row.refresh_from_db()
    assert "localhost resolves to 127.0.0.1, a loopback address" in row.last_error


def test_an_internal_host_named_by_the_operator_may_be_reached_over_http(settings):
    settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = ["127.0.0.1"]
    with WebhookReceiver([200]) as receiver:
        row = queued(receiver.url)
        assert deliver(row.pk) == "sent"
    assert len(receiver.requests) == 1


class _Redirecting(LoopbackHTTP):
    """A receiver that answers every POST with a redirect to another loopback port."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                outer.hits += 1
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(307)
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)
        self.url = f"{self.origin}/hook/abcd"


def test_a_redirect_is_not_followed(settings):
    settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = ["127.0.0.1"]
    with _Redirecting() as receiver:
        row = queued(receiver.url)
        assert deliver(row.pk) == "retry"
    row.refresh_from_db()
    assert receiver.hits == 1
    assert row.last_error == "The webhook at http://127.0.0.1:%d/…abcd answered with a redirect (HTTP 307), which is not followed." % receiver.port


def test_a_receivers_reply_goes_to_the_log_and_never_to_the_history_page(client, settings, caplog):
    settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = ["127.0.0.1"]
    with WebhookReceiver([500]) as receiver:
        row = queued(receiver.url)
        with caplog.at_level(logging.WARNING, logger="batches.notify.channels"):
            deliver(row.pk)
    row.refresh_from_db()
    assert "internal_error" not in row.last_error  # what the receiver said
    assert row.last_error.endswith("answered HTTP 500; its reply is in the worker's log.")
    assert any("answered HTTP 500: internal_error" in record.getMessage() for record in caplog.records)
    assert "internal_error" not in client.get("/notifications/").content.decode()


def test_credentials_saved_in_an_old_url_are_never_shown():
    url = "https://alice:hunter2@hooks.example.com:8443/services/T/B/wxyz"
    assert mask_url(url) == "https://hooks.example.com:8443/…wxyz"
    assert "hunter2" not in recipient_label(f"slack:{url}") and "alice" not in recipient_label(f"slack:{url}")


@pytest.mark.parametrize("drip", [None, 0.15])
def test_a_receiver_that_never_finishes_answering_is_cut_off_at_the_send_deadline(settings, drip):
    """Silent, or one byte at a time (each read well inside a per-read timeout): the whole send still
    ends at DASHBOARD_NOTIFY_SEND_SECONDS."""
    settings.DASHBOARD_NOTIFY_INTERNAL_HOSTS = ["127.0.0.1"]
    settings.DASHBOARD_NOTIFY_SEND_SECONDS = 0.5
    with SlowReceiver(drip=drip) as receiver:
        row = queued(receiver.url)
        started = time.monotonic()
        assert deliver(row.pk) == "retry"
        took = time.monotonic() - started
        waited = time.monotonic()
        while receiver.connections < 1 and time.monotonic() - waited < 2:  # its accept loop may lag behind
            time.sleep(0.01)
    row.refresh_from_db()
    assert 0.45 < took < 1.5
    assert receiver.connections == 1
    assert row.last_error == "The webhook at %s did not answer within 0.5 s." % mask_url(receiver.url)


def test_address_classes_follow_the_ipaddress_module():
    assert egress.address_problem("8.8.8.8") is None
    assert egress.address_problem("2606:4700::1111") is None
    assert egress.address_problem("fe80::1%eth0") == "link-local"
    assert egress.address_problem("fc00::1") == "private"
    assert egress.address_problem("::") == "unspecified"
    assert egress.address_problem("240.0.0.1") == "reserved"
