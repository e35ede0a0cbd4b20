"""The audit trail: written before the upstream call, completed after it, shown per batch and at /audit/."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.utils import timezone

from batches.models import AuditEntry
from batches.projects import get_project
from batches.services import audited
from tests.helpers import HTMX


def make_entry(**fields) -> AuditEntry:
    created_at = fields.pop("created_at", None)
    defaults = {"actor": "ops@example.com", "action": "cancel", "batch_id": "batch_1", "outcome": "success"}
    entry = AuditEntry.objects.create(**{**defaults, **fields})
    if created_at is not None:
        AuditEntry.objects.filter(pk=entry.pk).update(created_at=created_at)
        entry.refresh_from_db()
    return entry


@pytest.mark.django_db
def test_audited_writes_a_pending_row_before_the_work_and_completes_it_after():
    with audited(get_project("default"), "ops@example.com", AuditEntry.Action.CANCEL, batch_id="batch_1") as entry:
        stored = AuditEntry.objects.get(pk=entry.pk)
        assert stored.outcome == "pending"
        assert stored.finished_at is None
    stored.refresh_from_db()
    assert stored.outcome == "success"
    assert stored.finished_at is not None


@pytest.mark.django_db(transaction=True)
def test_the_pending_row_is_committed_while_the_upstream_call_is_in_flight(client, upstream, settings, running_batch):
    settings.DASHBOARD_AUTH = "none"
    upstream.state.inject_fault(route="POST /v1/batches/{id}/cancel", delay=1.0, times=1)
    seen = []

    def watch():
        deadline = time.monotonic() + 3
        try:
            while time.monotonic() < deadline and not seen:
                seen.extend(AuditEntry.objects.filter(batch_id=running_batch, outcome="pending"))
                time.sleep(0.05)
        finally:
            connection.close()  # this thread's own connection; left open, PostgreSQL cannot drop the test db

    watcher = threading.Thread(target=watch)
    watcher.start()
    client.post(f"/projects/default/batches/{running_batch}/cancel/")
    watcher.join()
    assert seen and seen[0].action == "cancel"
    assert AuditEntry.objects.get().outcome == "success"


@pytest.mark.django_db
def test_an_upstream_failure_is_recorded_with_its_status_and_request_id(client, upstream, proxy_mode, running_batch):
    operator = proxy_mode("ops@example.com")
    upstream.state.inject_fault(
        route="POST /v1/batches/{id}/cancel",
        status=500,
        body={"error": {"message": "The server had an error", "type": "server_error"}},
        times=5,
    )
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=operator)
    assert response.status_code == 302
    entry = AuditEntry.objects.get()
    assert entry.outcome == "error"
    assert entry.upstream_status == 500
    assert entry.upstream_request_id.startswith("req_")  # the emulator's x-request-id, kept for support
    assert entry.actor == "ops@example.com"
    assert entry.finished_at is not None
    assert entry.message


@pytest.mark.django_db
def test_a_successful_cancel_and_create_record_the_upstream_status_and_request_id(client, upstream, proxy_mode, running_batch):
    operator = proxy_mode("ops@example.com")
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=operator).status_code == 302
    line = json.dumps({"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                       "body": {"model": "gpt-4o-mini", "messages": []}})
    upload = SimpleUploadedFile("r.jsonl", line.encode() + b"\n", content_type="application/jsonl")
    created = client.post("/projects/default/batches/new/", headers=operator, data={
        "token": "tok-audit", "endpoint": "auto", "completion_window": "24h", "input_file_id": "", "file": upload})
    assert created.status_code == 302
    entries = {entry.action: entry for entry in AuditEntry.objects.all()}
    assert set(entries) == {"cancel", "upload", "create"}
    for entry in entries.values():
        assert entry.outcome == "success"
        assert entry.upstream_status == 200
        assert entry.upstream_request_id.startswith("req_"), entry.action  # the emulator's x-request-id
    page = client.get("/audit/", headers=operator).content.decode()
    assert f"status 200 <code>{entries['cancel'].upstream_request_id}</code>" in page
    assert f"status 200 <code>{entries['create'].upstream_request_id}</code>" in page


@pytest.mark.django_db
def test_an_unreachable_upstream_still_leaves_a_completed_audit_row(client, settings):
    settings.DASHBOARD_AUTH = "none"
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    client.post("/projects/default/batches/batch_abc123/cancel/")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.batch_id, entry.outcome) == ("cancel", "batch_abc123", "error")
    assert entry.finished_at is not None
    assert "could not be reached" in entry.message


@pytest.mark.django_db
def test_a_batch_page_shows_its_history_in_words(client, upstream, settings, running_batch):
    settings.DASHBOARD_AUTH = "none"
    make_entry(batch_id=running_batch, action="create", actor="maker@example.com", created_at=timezone.now() - timedelta(hours=2))
    make_entry(batch_id=running_batch, created_at=timezone.now() - timedelta(minutes=3))
    make_entry(batch_id="batch_other", actor="elsewhere@example.com")
    body = client.get(f"/projects/default/batches/{running_batch}/").content.decode()
    # The person requested the cancel; the batch is cancelled later, by the API (here it still runs).
    assert "cancel requested by <strong>ops@example.com</strong>,\n" in body
    assert "cancelled by" not in body
    assert "3\xa0minutes ago" in body  # naturaltime uses no-break spaces
    assert "created by <strong>maker@example.com</strong>" in body
    assert "elsewhere@example.com" not in body
    assert f'href="/audit/?project=default&amp;batch={running_batch}"' in body


@pytest.mark.django_db
def test_a_failed_action_in_a_batch_history_says_why(client, upstream, settings, running_batch):
    settings.DASHBOARD_AUTH = "none"
    make_entry(batch_id=running_batch, outcome="error", message="The Batch API failed.", upstream_status=503,
               upstream_request_id="req_x1")
    body = client.get(f"/projects/default/batches/{running_batch}/").content.decode()
    assert "cancel by <strong>ops@example.com</strong> failed" in body
    assert "upstream status 503" in body and "req_x1" in body


@pytest.mark.django_db
def test_the_audit_page_lists_every_action_newest_first(client, settings):
    settings.DASHBOARD_AUTH = "none"
    make_entry(actor="first@example.com", created_at=timezone.now() - timedelta(minutes=5))
    make_entry(actor="second@example.com", action="create", batch_id="batch_2")
    response = client.get("/audit/")
    assert response.status_code == 200
    body = response.content.decode()
    assert body.index("second@example.com") < body.index("first@example.com")
    assert 'href="/projects/default/batches/batch_2/"' in body


@pytest.mark.django_db
def test_the_audit_page_filters_by_person_action_and_batch_in_the_url(client, settings):
    settings.DASHBOARD_AUTH = "none"
    make_entry(actor="ann@example.com", action="cancel", batch_id="batch_a")
    make_entry(actor="ann@example.com", action="create", batch_id="batch_b")
    make_entry(actor="ben@example.com", action="cancel", batch_id="batch_a")
    body = client.get("/audit/?person=ann&action=cancel").content.decode()
    assert body.count('<tr class="outcome-') == 1
    assert "batch_a" in body and "ben@example.com</a>" not in body
    body = client.get("/audit/?batch=batch_a").content.decode()
    assert body.count('<tr class="outcome-') == 2
    assert 'value="batch_a"' in body
    body = client.get("/audit/?person=nobody").content.decode()
    assert "No actions match these filters." in body


@pytest.mark.django_db
def test_an_unknown_action_filter_is_explained_not_an_error(client, settings):
    settings.DASHBOARD_AUTH = "none"
    make_entry()
    response = client.get("/audit/?action=<b>drop</b>")
    assert response.status_code == 200
    body = response.content.decode()
    assert "is not an action the dashboard records" in body
    assert "<b>drop</b>" not in body


@pytest.mark.django_db
def test_the_audit_page_is_paginated_and_the_pager_keeps_the_filters(client, settings):
    settings.DASHBOARD_AUTH = "none"
    for n in range(55):
        make_entry(actor="ann@example.com", batch_id=f"batch_{n}")
    body = client.get("/audit/?person=ann").content.decode()
    assert body.count('<tr class="outcome-') == 50
    assert "Page 1 of 2 (55 actions)" in body
    assert 'href="/audit/?person=ann&amp;page=2"' in body
    body = client.get("/audit/?person=ann&page=2").content.decode()
    assert body.count('<tr class="outcome-') == 5
    assert client.get("/audit/?page=zzz").status_code == 200


@pytest.mark.django_db
def test_the_audit_table_is_an_htmx_partial_that_pushes_its_url(client, settings):
    settings.DASHBOARD_AUTH = "none"
    make_entry()
    response = client.get("/audit/?action=cancel", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="audit-table">')
    full = client.get("/audit/").content.decode()
    assert 'hx-push-url="true"' in full and 'hx-target="#audit-table"' in full
    assert "HX-Request" in response["Vary"]


@pytest.mark.django_db
def test_names_in_the_audit_trail_are_escaped(client, settings):
    settings.DASHBOARD_AUTH = "none"
    make_entry(actor="<script>alert(1)</script>", batch_id="batch_x")
    body = client.get("/audit/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;" in body


@pytest.mark.django_db
def test_the_audit_page_needs_a_signed_in_identity_like_every_page(client, proxy_mode):
    reader = proxy_mode("reader@example.com")
    assert client.get("/audit/").status_code == 401
    response = client.get("/audit/", headers=reader)
    assert response.status_code == 200
    assert "Signed in as <strong>reader@example.com</strong>" in response.content.decode()
