"""Roles: operators (DASHBOARD_OPERATOR_GROUPS) may create and cancel; everyone else signed in may look."""

from __future__ import annotations

import pytest

from batches.models import AuditEntry
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

READER = {"X-Forwarded-Email": "reader@example.com", "X-Forwarded-Groups": "viewers, analysts"}
OPERATOR = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "analysts,batch-operators"}


@pytest.fixture
def roles(proxy_mode, upstream):
    proxy_mode(operator_groups=["batch-operators"])
    return upstream


def test_a_reader_sees_no_cancel_button_and_no_new_batch_link(client, roles, running_batch):
    body = client.get(f"/projects/default/batches/{running_batch}/", headers=READER).content.decode()
    assert f"/projects/default/batches/{running_batch}/cancel/" not in body
    assert 'href="/projects/default/batches/new/"' not in body
    assert "read-only" in body


def test_an_operator_sees_the_cancel_button(client, roles, running_batch):
    body = client.get(f"/projects/default/batches/{running_batch}/", headers=OPERATOR).content.decode()
    assert f"/projects/default/batches/{running_batch}/cancel/" in body
    assert 'href="/projects/default/batches/new/"' in body
    assert "read-only" not in body


def test_a_reader_posting_cancel_gets_403_and_nothing_reaches_upstream(client, roles, running_batch):
    roles.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=READER)
    assert response.status_code == 403
    assert "read-only access" in response.content.decode()
    assert roles.state.total_requests() == 0
    assert not AuditEntry.objects.exists()
    assert roles.state.get_batch(running_batch)["status"] == "in_progress"


def test_a_reader_posting_cancel_through_htmx_gets_a_403_partial(client, roles, running_batch):
    roles.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**READER, **HTMX, "HX-Target": f"row-{running_batch}"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "<html" not in body
    assert "read-only access" in body
    assert roles.state.total_requests() == 0


def test_a_reader_posting_create_gets_403_and_nothing_reaches_upstream(client, roles):
    roles.state.reset_counts()
    data = {"token": "t" * 32, "input_file_id": "file-abc", "endpoint": "/v1/responses", "completion_window": "24h"}
    response = client.post("/projects/default/batches/new/", data, headers=READER)
    assert response.status_code == 403
    assert roles.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_a_reader_posting_create_through_htmx_gets_a_403_partial(client, roles):
    roles.state.reset_counts()
    data = {"token": "t" * 32, "input_file_id": "file-abc", "endpoint": "/v1/responses", "completion_window": "24h"}
    response = client.post("/projects/default/batches/new/", data, headers={**READER, **HTMX})
    assert response.status_code == 403
    assert "<html" not in response.content.decode()
    assert roles.state.total_requests() == 0


def test_a_reader_cannot_create_a_retry_batch_either(client, roles, running_batch):
    roles.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/retry-failed/", headers=READER)
    assert response.status_code == 403
    assert roles.state.total_requests() == 0


def test_an_operator_cancel_succeeds_and_is_recorded_in_the_audit_trail(client, roles, running_batch):
    roles.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=OPERATOR)
    assert response.status_code == 302
    assert roles.state.counts["POST /v1/batches/{id}/cancel"] == 1
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action, entry.batch_id, entry.outcome) == (
        "ops@example.com", "cancel", running_batch, "success",
    )
    assert entry.finished_at is not None
    page = client.get(f"/projects/default/batches/{running_batch}/", headers=OPERATOR).content.decode()
    assert "cancel requested by <strong>ops@example.com</strong>" in page


def test_an_operator_cancel_through_htmx_succeeds(client, roles, running_batch):
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={**OPERATOR, **HTMX, "HX-Target": "batch-live"})
    assert response.status_code == 200
    assert "<html" not in response.content.decode()
    assert AuditEntry.objects.get().actor == "ops@example.com"


def test_with_no_operator_groups_every_signed_in_user_may_act(client, roles, settings, running_batch):
    settings.DASHBOARD_OPERATOR_GROUPS = []
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers={"X-Forwarded-Email": "anyone@example.com"})
    assert response.status_code == 302
    assert AuditEntry.objects.get().actor == "anyone@example.com"


def test_group_names_must_match_exactly(client, roles, running_batch):
    headers = {"X-Forwarded-Email": "eve@example.com", "X-Forwarded-Groups": "batch-operators-lite,Batch-Operators"}
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=headers).status_code == 403


def test_the_groups_header_name_is_configurable(client, roles, settings, running_batch):
    settings.DASHBOARD_GROUPS_HEADER = "X-Auth-Request-Groups"
    old_header = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "batch-operators"}
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=old_header).status_code == 403
    new_header = {"X-Forwarded-Email": "ops@example.com", "X-Auth-Request-Groups": "batch-operators"}
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=new_header).status_code == 302


def test_losing_the_operator_group_takes_effect_on_the_next_request(client, roles, running_batch):
    assert client.get(f"/projects/default/batches/{running_batch}/", headers=OPERATOR).status_code == 200
    demoted = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "analysts"}
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=demoted).status_code == 403


def test_in_demo_mode_without_sign_in_everybody_may_act_and_every_page_says_so(client, upstream, settings, running_batch):
    settings.DASHBOARD_AUTH = "none"
    body = client.get(f"/projects/default/batches/{running_batch}/").content.decode()
    assert "nobody signs in" in body
    assert f"/projects/default/batches/{running_batch}/cancel/" in body
    assert client.get("/audit/").content.decode().count("nobody signs in") == 1
    assert client.post(f"/projects/default/batches/{running_batch}/cancel/").status_code == 302
    assert AuditEntry.objects.get().actor == "anonymous (no sign-in)"
