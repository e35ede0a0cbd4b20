"""The browse pages against the emulator over real HTTP: cursor paging equals the upstream's order,
one upstream call per page view, and a cancel that goes cancelling → cancelled."""

from __future__ import annotations

import html
import re

import pytest
from django.core.cache import cache
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr id="row-([^"]+)"')


def row_ids(body: str) -> list[str]:
    return ROW_ID.findall(body)


def pager_href(body: str, rel: str) -> str:
    return html.unescape(re.search(rf'rel="{rel}" href="([^"]+)"', body).group(1))


def test_pages_two_and_three_reached_by_the_cursor_equal_the_upstreams_order(client, upstream):
    upstream_order = [b["id"] for b in upstream.state.list_batches()]
    assert len(upstream_order) > 21  # the seed has enough batches for three pages of 7

    page1 = client.get("/projects/default/batches/?limit=7").content.decode()
    page2 = client.get(pager_href(page1, "next")).content.decode()
    # Page 3 through htmx, as the browser's "Next" does it.
    page3 = client.get(pager_href(page2, "next"), headers=HTMX).content.decode()

    assert row_ids(page1) == upstream_order[0:7]
    assert row_ids(page2) == upstream_order[7:14]
    assert row_ids(page3) == upstream_order[14:21]
    # And back: "Previous" from page 3 is page 2 again.
    assert row_ids(client.get(pager_href(page3, "prev")).content.decode()) == upstream_order[7:14]


def test_the_last_page_has_no_next_link(client, upstream):
    upstream_order = [b["id"] for b in upstream.state.list_batches()]
    body = client.get(f"/projects/default/batches/?after={upstream_order[-3]}&limit=5").content.decode()
    assert row_ids(body) == upstream_order[-2:]
    assert 'rel="next"' not in body


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        ("/projects/default/batches/", {}, 200),
        ("/projects/default/batches/?limit=100", {}, 200),
        ("/projects/default/batches/?limit=5", HTMX, 200),  # the table's own poll
        ("/projects/default/batches/?limit=abc", {}, 400),  # a corrected page size still costs one call, not two
    ],
)
def test_a_list_page_view_makes_exactly_one_upstream_request(client, upstream, path, headers, status):
    upstream.state.reset_counts()
    response = client.get(path, headers=headers)
    assert response.status_code == status
    assert dict(upstream.state.counts) == {"GET /v1/batches": 1}


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_a_detail_page_view_makes_exactly_one_upstream_request(client, upstream, headers):
    batch_id = upstream.state.list_batches()[3]["id"]
    upstream.state.reset_counts()
    assert client.get(f"/projects/default/batches/{batch_id}/", headers=headers).status_code == 200
    assert dict(upstream.state.counts) == {"GET /v1/batches/{id}": 1}


def test_a_cancel_goes_cancelling_then_cancelled_as_the_page_polls(client, upstream, running_batch):
    upstream.state.configure_batch(running_batch, cancel_secs=5)  # seeded batches take up to 5 min to drain
    htmx = {**HTMX, "HX-Target": "batch-live"}

    answer = client.post(f"/projects/default/batches/{running_batch}/cancel/", headers=htmx).content.decode()
    assert "status-cancelling" in answer and "hx-trigger" in answer

    # The emulator finishes a cancel a few emulated seconds later (in-flight requests drain). Moving
    # its clock on also means the few seconds the shared read cache keeps the cancel's answer are over.
    upstream.state.advance(10)
    cache.clear()
    poll = client.get(f"/projects/default/batches/{running_batch}/", headers=HTMX).content.decode()
    assert 'class="badge badge-lg status-cancelled"' in poll
    assert "hx-trigger" not in poll  # terminal: the region stops polling
    assert re.findall(r'<span class="step-label">([^<]+)</span>', poll)[-2:] == ["Cancelling", "Cancelled"]

    # The list row shows it too.
    listing = client.get("/projects/default/batches/?limit=100").content.decode()
    row = re.search(rf'<tr id="row-{running_batch}".*?</tr>', listing, re.S).group(0)
    assert "status-cancelled" in row and "/cancel/" not in row
