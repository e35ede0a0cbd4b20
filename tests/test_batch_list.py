"""The batch list view (/batches/): full page, htmx partial, cursor paging, live refresh, bad input."""

from __future__ import annotations

import html
import re

import pytest
from tests.helpers import HTMX

# Pages may read the audit trail (detail history) and sessions: every test may use the database.
pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr id="row-([^"]+)"')


def row_ids(body: str) -> list[str]:
    return ROW_ID.findall(body)


def link(body: str, rel: str) -> str | None:
    """The href of the pager link with this rel (prev / next)."""
    match = re.search(rf'rel="{rel}" href="([^"]+)"', body)
    return html.unescape(match.group(1)) if match else None


def list_page(client, query: str = "", *, status: int = 200, **extra) -> str:
    """The body of the batch list at ``query`` (such as "?limit=5"), which must answer ``status``."""
    response = client.get(f"/projects/default/batches/{query}", **extra)
    assert response.status_code == status
    return response.content.decode()


def newest(emulator, **fields):
    """A static batch created after every seeded one, so it is first in the list."""
    created = int(emulator.state.now()) + 1000 + len(emulator.state.batches)
    return emulator.state.add_batch(created_at=created, **fields)


def test_the_root_address_redirects_to_the_batch_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/projects/default/batches/"


def test_the_list_is_a_full_page_of_twenty_batches_in_the_upstreams_order(client, upstream):
    body = list_page(client)
    assert "<html" in body
    assert row_ids(body) == [b["id"] for b in upstream.state.list_batches()[:20]]


def test_an_htmx_request_gets_only_the_table_partial(client, upstream):
    response = client.get("/projects/default/batches/?limit=5", headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body
    assert body.lstrip().startswith('<section id="batch-table"')
    assert len(row_ids(body)) == 5
    assert response["Vary"] and "HX-Request" in response["Vary"]


def test_a_row_shows_id_link_status_endpoint_model_progress_times_and_description(client, upstream):
    batch = newest(
        upstream,
        status="in_progress",
        endpoint="/v1/embeddings",
        model="text-embedding-3-small",
        request_counts={"total": 200, "completed": 100, "failed": 50},
        metadata={"description": "catalog shard 7"},
    )
    body = client.get("/projects/default/batches/?limit=1").content.decode()
    assert f'<a href="/projects/default/batches/{batch["id"]}/"><code>{batch["id"]}</code></a>' in body
    assert 'class="badge status-in_progress"' in body
    assert ">in progress</span>" in body
    assert "/v1/embeddings" in body
    assert "text-embedding-3-small" in body
    assert 'class="ok w-50"' in body and 'class="bad w-25"' in body
    assert 'aria-valuenow="150"' in body
    assert "<time datetime=" in body and "from now" in body  # the expiry is in the future
    assert "catalog shard 7" in body


def test_an_unknown_status_still_renders_with_a_neutral_badge(client, upstream):
    newest(upstream, status="paused_for_review")
    body = client.get("/projects/default/batches/?limit=1").content.decode()
    assert 'class="badge status-unknown"' in body
    assert "paused for review" in body


def test_metadata_from_the_upstream_is_escaped(client, upstream):
    newest(upstream, metadata={"description": '<script>alert("x")</script>'})
    body = client.get("/projects/default/batches/?limit=1").content.decode()
    assert '<script>alert("x")</script>' not in body
    # The row is rendered by Jinja2 (markupsafe writes a quote as &#34;, Django as &quot;).
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in body


def test_completed_batches_with_failures_are_flagged_in_the_row(client, upstream):
    newest(upstream, status="completed", request_counts={"total": 4, "completed": 3, "failed": 1})
    newest(upstream, status="completed", request_counts={"total": 4, "completed": 0, "failed": 4})
    body = client.get("/projects/default/batches/?limit=2").content.decode()
    assert ">all failed</span>" in body
    assert ">some failed</span>" in body


def test_next_is_a_real_link_that_htmx_follows_and_pushes(client, upstream):
    body = client.get("/projects/default/batches/?limit=5").content.decode()
    last = row_ids(body)[-1]
    next_url = f"/projects/default/batches/?after={last}&amp;limit=5"
    assert f'rel="next" href="{next_url}" hx-get="{next_url}">Next' in body
    # The link inherits where and how htmx swaps from the pager, set there once.
    pager = re.search(r'<nav class="pager"[^>]*>', body).group(0)
    assert 'hx-target="#batch-table" hx-swap="outerHTML" hx-push-url="true" hx-sync="#batch-table:replace"' in pager
    assert "First page" not in body  # already on it


def test_previous_walks_back_along_the_trail_and_first_page_is_always_there(client, upstream):
    ids = [b["id"] for b in upstream.state.list_batches()]
    page3 = client.get(f"/projects/default/batches/?after={ids[9]}&limit=5&prev={ids[4]}").content.decode()
    assert row_ids(page3) == ids[10:15]
    assert link(page3, "prev") == f"/projects/default/batches/?after={ids[4]}&limit=5"
    assert f'href="/projects/default/batches/?limit=5"' in page3 and "First page" in page3
    assert link(page3, "next") == f"/projects/default/batches/?after={ids[14]}&limit=5&prev={ids[4]},{ids[9]}"

    page2 = client.get(link(page3, "prev")).content.decode()
    assert row_ids(page2) == ids[5:10]
    assert link(page2, "prev") == "/projects/default/batches/?limit=5"


@pytest.mark.parametrize("limit", ["0", "101", "-3", "ten", "2.5"])
def test_a_bad_page_size_gets_a_clear_message_and_the_default_page_not_a_server_error(client, upstream, limit):
    body = list_page(client, f"?limit={limit}", status=400)
    assert "Page size must be" in body and "showing 20 per page" in body
    assert len(row_ids(body)) == 20


def test_a_bad_page_size_in_an_htmx_request_puts_the_message_in_the_partial(client, upstream):
    body = list_page(client, "?limit=500", headers=HTMX)
    assert "<html" not in body
    assert "Page size must be a whole number from 1 to 100" in body


def test_an_after_cursor_that_is_not_an_id_falls_back_to_the_first_page(client, upstream):
    body = list_page(client, "?after=../../etc&limit=3", status=400)
    assert "not a valid batch id" in body
    assert row_ids(body) == [b["id"] for b in upstream.state.list_batches()[:3]]


def test_a_mangled_previous_trail_is_ignored_but_first_page_still_works(client, upstream):
    ids = [b["id"] for b in upstream.state.list_batches()]
    body = client.get(f"/projects/default/batches/?after={ids[4]}&limit=5&prev=bad%20id,{ids[1]}").content.decode()
    assert row_ids(body) == ids[5:10]
    assert link(body, "prev") == "/projects/default/batches/?limit=5"


def test_the_table_polls_one_list_request_while_a_batch_on_the_page_is_unfinished(client, upstream, settings):
    settings.DASHBOARD_POLL_SECONDS = 3
    newest(upstream, status="in_progress", request_counts={"total": 10, "completed": 1, "failed": 0})
    body = client.get("/projects/default/batches/?limit=2").content.decode()
    section = re.search(r'<section id="batch-table"[^>]*>', body).group(0)
    assert 'hx-get="/projects/default/batches/?limit=2"' in section
    assert 'hx-trigger="every 3s"' in section
    assert body.count("hx-trigger=") == 1  # one poll for the table, none per row


def test_the_table_stops_polling_when_every_batch_on_the_page_is_finished(client, upstream):
    for status in ("completed", "failed", "cancelled"):
        newest(upstream, status=status)
    body = client.get("/projects/default/batches/?limit=3", headers=HTMX).content.decode()
    assert "hx-trigger" not in body
    assert "data-poll" not in body


def test_cancel_buttons_are_real_forms_only_on_cancellable_rows(client, upstream):
    running = newest(upstream, status="in_progress")
    done = newest(upstream, status="completed")
    body = client.get("/projects/default/batches/?limit=2").content.decode()
    assert f'<form method="post" action="/projects/default/batches/{running["id"]}/cancel/"' in body
    assert f'action="/projects/default/batches/{done["id"]}/cancel/"' not in body
    assert 'name="csrfmiddlewaretoken"' in body
    assert 'hx-confirm="Cancel batch' in body and 'hx-disabled-elt="find button"' in body


def test_look_only_users_see_no_cancel_buttons(client, upstream, proxy_mode):
    viewer = proxy_mode("viewer@example.com", groups=["staff"], operator_groups=["batch-operators"])
    newest(upstream, status="in_progress")
    response = client.get("/projects/default/batches/?limit=1", headers=viewer)
    assert response.status_code == 200
    assert "/cancel/" not in response.content.decode()


def test_an_upstream_outage_is_a_message_on_the_page_not_a_server_error(client, upstream):
    upstream.state.inject_fault(route="/v1/batches", method="GET", status=503, times=None)
    body = list_page(client, status=503)
    assert "<html" in body
    assert "Could not load batches" in body and "Try again" in body


def test_an_unknown_cursor_rejected_by_the_upstream_offers_the_first_page(client, upstream):
    body = list_page(client, "?after=batch_doesnotexist&limit=5", status=400, headers=HTMX)
    assert "<html" not in body
    assert "Could not load batches" in body
    assert 'href="/projects/default/batches/?limit=5">Go to the first page' in body
