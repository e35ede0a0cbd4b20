"""The batch detail view (/batches/<id>/): every field, the polling status region, failures, 404s."""

from __future__ import annotations

import re

import pytest
from tests.helpers import HTMX, api_usage

# Pages may read the audit trail (detail history) and sessions: every test may use the database.
pytestmark = pytest.mark.django_db

T0 = 1_760_000_000


def full_batch(emulator, **overrides):
    fields = dict(
        status="completed",
        endpoint="/v1/chat/completions",
        model="gpt-4o-mini-2024-07-18",
        input_file_id="file-input123",
        output_file_id="file-output456",
        error_file_id="file-errors789",
        completion_window="24h",
        created_at=T0,
        in_progress_at=T0 + 60,
        finalizing_at=T0 + 3660,
        completed_at=T0 + 3725,
        expires_at=T0 + 86400,
        request_counts={"total": 1000, "completed": 990, "failed": 10},
        usage=api_usage(123456, 2000, 7890),
        metadata={"description": "nightly eval", "team": "search"},
        errors={"object": "list", "data": [{"code": "invalid_json", "message": "Line is not JSON.", "param": "body", "line": 17}]},
    )
    fields.update(overrides)
    return emulator.state.add_batch(**fields)


def test_the_detail_page_shows_every_field(client, upstream):
    batch = full_batch(upstream)
    response = client.get(f"/projects/default/batches/{batch['id']}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" in body
    assert f"<code>{batch['id']}</code>" in body
    assert 'class="badge badge-lg status-completed"' in body
    for text in (
        "/v1/chat/completions", "gpt-4o-mini-2024-07-18", "24h",
        "file-input123", "file-output456", "file-errors789",
        "nightly eval", "<code>team</code></th><td>search</td>",
        "123,456", "2,000", "7,890", "131,346",
        "990", "99.0%", "1.0%", "1,000",
        "invalid_json", "Line is not JSON.", "<code>body</code>", ">17<",
    ):
        assert text in body, text
    assert 'class="ok w-99"' in body and 'class="bad w-1"' in body
    # Timeline: each status time, oldest first, with the time between steps.
    labels = re.findall(r'<span class="step-label">([^<]+)</span>', body)
    assert labels == ["Created", "In progress", "Finalizing", "Completed"]
    assert "+1 min" in body and "+1 h 00 min" in body and "+1 min" in body
    assert "2025-10-09 08:53:20 UTC" in body  # created_at, absolute
    assert 'id="raw-json"' in body and "<summary>Raw JSON from the API</summary>" in body
    for kind in ("input", "output", "error"):
        assert f'href="/projects/default/batches/{batch["id"]}/files/{kind}.jsonl" download>Download</a>' in body
    assert f'href="/projects/default/batches/{batch["id"]}/results/">View results</a>' in body


def test_a_batch_without_result_files_offers_no_download(client, upstream):
    batch = full_batch(upstream, status="in_progress", output_file_id=None, error_file_id=None, completed_at=None)
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert "/files/output.jsonl" not in body and "/files/error.jsonl" not in body
    assert "View results" not in body


def test_an_htmx_request_gets_only_the_status_region(client, upstream):
    batch = full_batch(upstream)
    response = client.get(f"/projects/default/batches/{batch['id']}/", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="batch-live"')
    assert "HX-Request" in response["Vary"]


def test_the_status_region_polls_while_the_batch_is_unfinished(client, upstream, settings):
    settings.DASHBOARD_POLL_SECONDS = 2
    batch = full_batch(upstream, status="in_progress", completed_at=None, finalizing_at=None)
    body = client.get(f"/projects/default/batches/{batch['id']}/", headers=HTMX).content.decode()
    opening = re.search(r'<section id="batch-live"[^>]*>', body).group(0)
    assert f'hx-get="/projects/default/batches/{batch["id"]}/"' in opening
    assert 'hx-trigger="every 2s"' in opening


@pytest.mark.parametrize("status", ["completed", "failed", "expired", "cancelled"])
def test_the_status_region_stops_polling_once_the_batch_is_terminal(client, upstream, status):
    batch = full_batch(upstream, status=status)
    body = client.get(f"/projects/default/batches/{batch['id']}/", headers=HTMX).content.decode()
    assert "hx-trigger" not in body
    assert "data-poll" not in body


def test_a_completed_batch_whose_requests_all_failed_says_so_prominently(client, upstream):
    batch = full_batch(upstream, output_file_id=None, request_counts={"total": 9, "completed": 0, "failed": 9})
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert 'class="callout callout-bad" role="alert"><strong>Completed, but every request failed</strong>' in body
    assert "(9 of 9)" in body


def test_a_completed_batch_with_some_failures_says_so(client, upstream):
    batch = full_batch(upstream, request_counts={"total": 100, "completed": 75, "failed": 25})
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert "Completed with failures:</strong> 25 of 100 requests failed (25.0%)" in body


def test_a_fully_successful_batch_says_all_requests_succeeded(client, upstream):
    batch = full_batch(upstream, request_counts={"total": 5, "completed": 5, "failed": 0})
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert "All 5 requests succeeded." in body


def test_the_raw_json_is_pretty_printed_and_escaped(client, upstream):
    batch = full_batch(upstream, metadata={"description": "<img src=x onerror=alert(1)>"})
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert "<img src=x" not in body
    assert "&quot;description&quot;: &quot;&lt;img src=x onerror=alert(1)&gt;&quot;" in body
    assert f'  &quot;id&quot;: &quot;{batch["id"]}&quot;,\n' in body


def test_an_unknown_status_renders_neutrally_without_a_cancel_button(client, upstream):
    batch = full_batch(upstream, status="archived")
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert 'status-unknown' in body and ">archived</span>" in body
    assert "does not know" in body
    assert "Cancel batch</button>" not in body


def test_a_cancellable_batch_has_a_cancel_form_that_swaps_the_status_region(client, upstream):
    batch = full_batch(upstream, status="finalizing", completed_at=None)
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert f'<form class="cancel-form" method="post" action="/projects/default/batches/{batch["id"]}/cancel/"' in body
    assert f'hx-post="/projects/default/batches/{batch["id"]}/cancel/" hx-target="#batch-live" hx-swap="outerHTML"' in body
    assert "hx-confirm=" in body and 'hx-disabled-elt="find button"' in body
    assert 'name="csrfmiddlewaretoken"' in body


def test_a_finished_batch_has_no_cancel_button(client, upstream):
    batch = full_batch(upstream)
    assert "/cancel/" not in client.get(f"/projects/default/batches/{batch['id']}/").content.decode()


def test_look_only_users_see_no_cancel_button(client, upstream, proxy_mode):
    viewer = proxy_mode("viewer@example.com", operator_groups=["batch-operators"])
    batch = full_batch(upstream, status="in_progress")
    response = client.get(f"/projects/default/batches/{batch['id']}/", headers=viewer)
    assert response.status_code == 200
    assert "/cancel/" not in response.content.decode()


def test_a_batch_with_few_fields_still_renders(client, upstream):
    batch = upstream.state.add_batch(status="validating", request_counts=None, expires_at=None, created_at=T0)
    body = client.get(f"/projects/default/batches/{batch['id']}/").content.decode()
    assert "Requests are counted once the input file has been validated." in body
    assert "The API reports no token usage for this batch." in body
    assert "No metadata." in body


def test_an_unknown_batch_is_a_404_page_that_says_so(client, upstream):
    response = client.get("/projects/default/batches/batch_does_not_exist/")
    assert response.status_code == 404
    assert "There is no batch “batch_does_not_exist”" in response.content.decode()


def test_an_id_that_cannot_be_an_id_is_a_404_without_an_upstream_call(client, upstream):
    upstream.state.reset_counts()
    response = client.get("/projects/default/batches/..%2Fbatches/")
    assert response.status_code == 404
    assert upstream.state.total_requests() == 0


def test_an_upstream_outage_is_a_message_not_a_server_error(client, upstream):
    batch = full_batch(upstream)
    upstream.state.inject_fault(route="/v1/batches/{id}", method="GET", status=502, times=None)
    response = client.get(f"/projects/default/batches/{batch['id']}/")
    assert response.status_code == 503
    assert "Could not load this batch" in response.content.decode()
