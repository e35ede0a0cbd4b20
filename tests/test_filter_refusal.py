"""Issue #23 items 5 and 6: a date far in the future is a sentence, never a 500; an export, a cost total
or a bulk cancel whose filter has a problem refuses with the sentence instead of widening to everything."""

from __future__ import annotations

import html

import pytest
from django.http import QueryDict

from batches.index import query
from batches.index.filters import parse_filters
from batches.models import AuditEntry, BatchRecord
from find_factory import make, synced
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

FAR = "created_before=9999-12-31"
PAGES = [
    "/projects/default/batches/",
    "/search/",
]
REFUSING_GETS = [
    "/projects/default/batches/export.csv",
    "/projects/default/batches/export.jsonl",
    "/search/export.csv",
    "/search/export.jsonl",
    "/projects/default/batches/cost/",
    "/search/cost/",
]
BULK = ["/projects/default/batches/bulk-cancel/", "/search/bulk-cancel/"]


@pytest.fixture
def rows():
    synced()
    make(id="batch_run1", status="in_progress")
    make(id="batch_run2", status="validating")
    make(id="batch_done", status="completed")


def text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("url", PAGES)
def test_a_date_in_year_9999_is_a_sentence_on_the_filtered_pages_not_a_server_error(client, rows, url):
    response = client.get(f"{url}?{FAR}")
    assert response.status_code == 400
    assert "9999-12-31 is outside the dates the index holds (2000-01-01 to 2999-12-31)" in text(response)


@pytest.mark.parametrize("qs", ["created_after=9999-12-31", "created_before=0001-01-01", "created_after=1999-12-31"])
def test_every_date_outside_the_index_range_is_a_problem(qs):
    filters, problems = parse_filters(QueryDict(qs))
    assert filters.created_after is None and filters.created_before is None
    assert len(problems) == 1 and "outside the dates the index holds" in problems[0]


def test_the_last_date_in_range_still_filters_without_overflow(rows):
    filters, problems = parse_filters(QueryDict("created_before=2999-12-31&created_after=2000-01-01"))
    assert problems == []
    assert query.filtered(BatchRecord.objects.all(), filters).count() == 3


@pytest.mark.parametrize("url", REFUSING_GETS)
@pytest.mark.parametrize(
    ("qs", "says"),
    [
        (FAR, "9999-12-31 is outside the dates the index holds"),
        ("created_before=2025-13-40", "“2025-13-40” is not a date like 2025-03-31"),
        ("status=bogus", "There is no status “bogus”"),
    ],
)
def test_an_export_or_cost_total_with_a_bad_filter_refuses_with_the_sentence(client, rows, url, qs, says):
    response = client.get(f"{url}?{qs}")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    body = text(response)
    assert says in body
    assert "so nothing was" in body
    assert "batch_run1" not in body and "batch_done" not in body


def test_a_refused_cost_total_through_htmx_is_the_refusal_partial(client, rows):
    response = client.get(f"/projects/default/batches/cost/?{FAR}", headers=HTMX)
    assert response.status_code == 400
    body = text(response)
    assert "<html" not in body
    assert body.strip().startswith('<div class="refusal" role="alert" id="filter-refused">')
    assert "A cost total needs a filter without problems, so nothing was priced:" in body


def test_an_export_with_good_filters_still_streams(client, rows):
    response = client.get("/projects/default/batches/export.csv?status=in_progress&created_before=2999-12-31")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "batch_run1" in body and "batch_run2" not in body


@pytest.mark.parametrize("url", BULK)
@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"status": "bogus"}, "There is no status “bogus”"),
        ({"created_before": "9999-12-31"}, "9999-12-31 is outside the dates the index holds"),
        ({"created_after": "not-a-date"}, "“not-a-date” is not a date"),
        ({"status": "in_progress", "meta": "nocolon"}, "A metadata filter is written key:value"),
    ],
)
def test_cancel_all_matching_with_a_bad_filter_offers_nothing_and_sends_nothing(client, upstream, rows, url, fields, says):
    upstream.state.reset_counts()
    response = client.post(url, {"all": "1", **fields})
    assert response.status_code == 400
    body = text(response)
    assert says in body
    assert "Cancelling all matching needs a filter without problems, so nothing was cancelled:" in body
    assert 'name="pick"' not in body and 'name="confirm"' not in body
    assert upstream.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_cancel_all_matching_refuses_even_with_confirm(client, upstream, rows):
    response = client.post(BULK[0], {"all": "1", "status": "bogus", "confirm": "1"})
    assert response.status_code == 400
    assert upstream.state.total_requests() == 0
    assert not AuditEntry.objects.exists()


def test_cancel_all_matching_a_status_only_the_index_knows_is_not_refused(client, rows):
    make(id="batch_odd", status="paused_by_upstream")
    response = client.post(BULK[0], {"all": "1", "status": "paused_by_upstream"})
    assert response.status_code == 200
    assert "<td><code>batch_odd</code></td>" in response.content.decode()


def test_the_refusal_links_back_to_the_view_it_came_from(client, rows):
    back = "/projects/default/batches/?status=in_progress"
    body = client.post(BULK[0], {"all": "1", "status": "bogus", "back": back}).content.decode()
    assert f'<a href="{html.escape(back)}">Back to the batches</a>' in body
    body = client.post(BULK[0], {"all": "1", "status": "bogus", "back": "//evil.example/"}).content.decode()
    assert '<a href="/projects/default/batches/bulk-cancel/">' in body
