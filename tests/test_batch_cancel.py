"""The cancel view (POST /batches/<id>/cancel/): htmx from the panel or a row, no-JS post/redirect/get,
refusals (409, upstream errors, look-only users, CSRF), and the audit trail."""

from __future__ import annotations

import pytest
from django.test import Client

from batches.models import AuditEntry
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

CANCEL = "POST /v1/batches/{id}/cancel"
RETRIEVE = "GET /v1/batches/{id}"


def finished_batch(emulator) -> str:
    return emulator.state.add_batch(status="completed", request_counts={"total": 3, "completed": 3, "failed": 0})["id"]


def cancel_by_htmx(client, batch_id: str, target: str = "batch-live") -> str:
    """Cancel as the batch page's panel does (or a list row: ``target="row-<id>"``); the 200 answer's body."""
    response = client.post(f"/projects/default/batches/{batch_id}/cancel/", headers={**HTMX, "HX-Target": target})
    assert response.status_code == 200
    return response.content.decode()


def test_a_plain_post_cancels_and_redirects_to_the_batch_with_a_message(client, upstream, running_batch):
    upstream.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/")
    assert response.status_code == 302
    assert response["Location"] == f"/projects/default/batches/{running_batch}/"
    assert upstream.state.counts[CANCEL] == 1

    page = client.get(response["Location"]).content.decode()
    assert "Cancel requested." in page
    assert 'class="badge badge-lg status-cancelling"' in page


def test_an_htmx_cancel_answers_with_the_status_region_showing_cancelling_and_still_polling(client, upstream, running_batch):
    upstream.state.reset_counts()
    body = cancel_by_htmx(client, running_batch)
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="batch-live"')
    assert 'status-cancelling' in body and "Cancelling…" in body
    assert "Cancel requested." in body
    assert f'hx-get="/projects/default/batches/{running_batch}/" hx-trigger="every' in body
    assert "Cancel batch</button>" not in body  # cancelling is not cancellable again
    assert dict(upstream.state.counts) == {CANCEL: 1}  # the answer is the cancel's own, no extra read


def test_an_htmx_cancel_from_a_list_row_answers_with_the_row(client, upstream, running_batch):
    body = cancel_by_htmx(client, running_batch, target=f"row-{running_batch}")
    assert body.lstrip().startswith(f'<tr id="row-{running_batch}"')
    assert "status-cancelling" in body and "Cancel requested." in body


def test_cancelling_a_finished_batch_says_so_and_shows_its_fresh_state(client, upstream):
    batch_id = finished_batch(upstream)
    upstream.state.reset_counts()
    body = cancel_by_htmx(client, batch_id)
    assert "Not cancelled: this batch has already finished." in body
    assert "Cannot cancel a batch with status" in body  # the upstream's own words
    assert "status-completed" in body
    assert dict(upstream.state.counts) == {CANCEL: 1, RETRIEVE: 1}  # a 409 is never retried


def test_cancelling_a_finished_batch_without_javascript_redirects_with_a_warning(client, upstream):
    batch_id = finished_batch(upstream)
    response = client.post(f"/projects/default/batches/{batch_id}/cancel/", follow=True)
    body = response.content.decode()
    assert response.redirect_chain == [(f"/projects/default/batches/{batch_id}/", 302)]
    assert 'class="message message-warning"' in body and "already finished" in body


def test_an_upstream_error_on_cancel_is_a_message_with_the_fresh_state(client, upstream, running_batch):
    upstream.state.inject_fault(route="/v1/batches/{id}/cancel", method="POST", status=500, times=1)
    body = cancel_by_htmx(client, running_batch)
    assert "Cancel failed:" in body
    assert "status-in_progress" in body
    assert upstream.state.counts[CANCEL] == 1


def test_when_the_fresh_state_cannot_be_read_either_the_panel_says_so_and_retries(client, upstream, running_batch):
    upstream.state.inject_fault(route="/v1/batches/{id}/cancel", method="POST", status=500, times=1)
    upstream.state.inject_fault(route="/v1/batches/{id}", method="GET", status=400, times=1)
    body = cancel_by_htmx(client, running_batch)
    assert "Cancel failed:" in body
    assert "Could not load this batch's current state." in body
    assert f'hx-get="/projects/default/batches/{running_batch}/" hx-trigger="every' in body


def test_look_only_users_get_403_and_no_upstream_call(client, upstream, proxy_mode, running_batch):
    viewer = proxy_mode("viewer@example.com", groups=["staff"], operator_groups=["batch-operators"])
    upstream.state.reset_counts()
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=viewer)
    assert response.status_code == 403
    assert upstream.state.total_requests() == 0
    assert upstream.state.get_batch(running_batch)["status"] == "in_progress"


def test_operators_in_the_operator_group_may_cancel(client, upstream, proxy_mode, running_batch):
    operator = proxy_mode("op@example.com", groups=["staff", "batch-operators"], operator_groups=["batch-operators"])
    response = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=operator)
    assert response.status_code == 302
    assert upstream.state.get_batch(running_batch)["status"] == "cancelling"


def test_a_post_without_a_csrf_token_is_refused_before_any_upstream_call(upstream, running_batch):
    upstream.state.reset_counts()
    response = Client(enforce_csrf_checks=True).post(f"/projects/default/batches/{running_batch}/cancel/")
    assert response.status_code == 403
    assert upstream.state.total_requests() == 0


def test_get_is_not_a_way_to_cancel(client, upstream, running_batch):
    assert client.get(f"/projects/default/batches/{running_batch}/cancel/").status_code == 405
    assert upstream.state.get_batch(running_batch)["status"] == "in_progress"


def test_cancelling_an_unknown_batch_is_a_404(client, upstream):
    assert client.post("/projects/default/batches/batch_nope/cancel/").status_code == 404


def test_the_cancel_is_written_to_the_audit_trail(client, upstream, running_batch):
    client.post(f"/projects/default/batches/{running_batch}/cancel/")
    entry = AuditEntry.objects.get(batch_id=running_batch)
    assert entry.action == AuditEntry.Action.CANCEL
    assert entry.outcome == AuditEntry.Outcome.SUCCESS
