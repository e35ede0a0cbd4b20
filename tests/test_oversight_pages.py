"""Cost, ETA and trouble flags where operators see them: the batch page (with "Notify me"), the rows of
the live and the filtered lists, totals over a filter, the exports, the backfill line, the create
page's estimate panel and its price endpoint, and the filtered view polling while rows are unfinished."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from batches.models import BatchRecord, BatchSample, SyncState
from batches.oversight import pricing
from batches.upstream import Batch
from find_factory import T0, batch_json, index, synced
from tests.helpers import HTMX, api_usage

pytestmark = pytest.mark.django_db

LIST = "/projects/default/batches/"
USAGE = api_usage(1_000_000, 200_000, 250_000)


def sample_queries(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "batches_batchsample" in q["sql"]]


def at_risk_fields(now: float | None = None) -> dict:
    """A running batch a tenth done after an hour, expiring in ten minutes: its ETA is past expiry."""
    now = int(now or time.time())
    return dict(
        status="in_progress", model="gpt-4o-mini-2024-07-18", created_at=now - 3700, in_progress_at=now - 3600,
        expires_at=now + 600, request_counts={"total": 1000, "completed": 100, "failed": 0},
    )


def section(body: str, element_id: str) -> str:
    """The markup of the element with this id up to the end of the page (enough to ask "inside?")."""
    start = body.index(f'id="{element_id}"')
    return body[start:]


# -- the batch page ------------------------------------------------------------------------------------


def test_the_batch_page_shows_the_estimated_cost_with_its_rates_inside_the_live_region(client, upstream):
    batch = upstream.state.add_batch(status="completed", model="gpt-4o-mini-2024-07-18", usage=USAGE,
                                     request_counts={"total": 10, "completed": 10, "failed": 0})
    expected = pricing.batch_price(Batch.from_api(batch))
    assert expected.known
    body = client.get(f"{LIST}{batch['id']}/").content.decode()
    live = section(body, "batch-live")
    assert 'id="batch-oversight"' in live
    assert f'<strong class="cost">{expected.display}</strong>' in live
    assert "genai-prices" in live and "per 1M input / cached / output tokens" in live
    assert "OpenAI's usage dashboard is the bill" in live


def test_a_batch_of_a_model_without_a_price_says_no_price_and_why(client, upstream):
    batch = upstream.state.add_batch(status="completed", model="my-private-finetune", usage=USAGE)
    body = client.get(f"{LIST}{batch['id']}/").content.decode()
    assert '<span class="no-price">no price</span>' in body
    assert "does not know the model “my-private-finetune”" in body
    assert "$0.00" not in body


def test_a_running_batch_shows_its_eta_and_the_at_risk_flag_with_its_sentence(client, upstream):
    batch = upstream.state.add_batch(**at_risk_fields())
    body = client.get(f"{LIST}{batch['id']}/").content.decode()
    live = section(body, "batch-live")
    assert "<dt>ETA</dt>" in live and "requests left at" in live
    assert '<span class="badge flag-badge flag-at-risk" title="At ' in live and '>at risk<span class="visually-hidden">: At ' in live
    assert "would expire unfinished" in live


def test_notify_me_sits_in_the_page_head_outside_the_polled_region(client, upstream):
    batch = upstream.state.add_batch(**at_risk_fields())
    body = client.get(f"{LIST}{batch['id']}/").content.decode()
    head = body[body.index('class="page-head"'):body.index('id="batch-live"')]
    assert 'id="watch"' in head and "Notify me" in head
    assert 'id="watch"' not in section(body, "batch-live")
    poll = client.get(f"{LIST}{batch['id']}/", headers=HTMX).content.decode()
    assert 'id="watch"' not in poll


def test_the_polled_region_polls_once_per_tick_and_oversight_adds_one_cheap_query(client, upstream):
    batch = upstream.state.add_batch(**at_risk_fields())
    with CaptureQueriesContext(connection) as queries:
        poll = client.get(f"{LIST}{batch['id']}/", headers=HTMX).content.decode()
    assert poll.lstrip().startswith('<section id="batch-live"')
    assert poll.count("hx-trigger=") == 1 and 'hx-trigger="every ' in poll
    assert len(sample_queries(queries)) == 1  # the batch's samples, nothing per flag
    assert not [q for q in queries.captured_queries if "batches_watch" in q["sql"]]
    finished = upstream.state.add_batch(status="completed", model="gpt-4o-mini", usage=USAGE)
    with CaptureQueriesContext(connection) as queries:
        client.get(f"{LIST}{finished['id']}/", headers=HTMX)
    assert sample_queries(queries) == []  # a finished batch needs no history


# -- the live list ----------------------------------------------------------------------------------------


def test_live_list_rows_show_cost_and_flags_with_one_sample_query_for_the_page(client, upstream):
    risky = upstream.state.add_batch(**at_risk_fields())
    priced = upstream.state.add_batch(status="completed", model="gpt-4o-mini-2024-07-18", usage=USAGE,
                                      request_counts={"total": 10, "completed": 10, "failed": 0})
    failing = upstream.state.add_batch(status="completed", model="gpt-4o-mini", usage=USAGE,
                                       request_counts={"total": 10, "completed": 5, "failed": 5})
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"{LIST}?limit=100")
    body = response.content.decode()
    assert response.status_code == 200
    assert len(sample_queries(queries)) == 1  # 100 rows, several unfinished: one query
    rows = dict(re.findall(r'<tr id="row-([^"]+)" class="batch-row[^"]*">(.*?)</tr>', body, re.S))
    assert '<th scope="col" class="col-cost"' in body
    assert pricing.batch_price(Batch.from_api(priced)).display in rows[priced["id"]]
    assert "flag-at-risk" in rows[risky["id"]] and "would expire unfinished" in rows[risky["id"]]
    assert "flag-failing" in rows[failing["id"]] and "50 % of finished requests failed" in rows[failing["id"]]
    assert 'class="no-price"' in rows[risky["id"]]  # running: no usage yet, and it says so
    assert rows[risky["id"]].count('<td class="col-cost">') == 1
    # The htmx refresh of the table keeps the same cells.
    partial = client.get(f"{LIST}?limit=100", headers=HTMX).content.decode()
    assert "<html" not in partial and "flag-at-risk" in partial


def test_the_row_answered_after_a_cancel_from_the_list_keeps_its_cost_cell(client, upstream, settings):
    settings.DASHBOARD_AUTH = "none"
    batch = upstream.state.add_batch(**at_risk_fields())
    response = client.post(f"{LIST}{batch['id']}/cancel/", headers={**HTMX, "HX-Target": f"row-{batch['id']}"})
    body = response.content.decode()
    assert body.lstrip().startswith(f'<tr id="row-{batch["id"]}"')
    assert body.count('<td class="col-cost">') == 1


# -- the filtered list and /search/ ---------------------------------------------------------------------------


@pytest.fixture
def indexed():
    """Forty indexed batches: priced ones, unknown models, no usage, failing ones and an at-risk one."""
    synced()
    now = int(time.time())
    rows = []
    for n in range(30):
        rows.append(batch_json(id=f"batch_p{n:02d}", model="gpt-4o-mini-2024-07-18", usage=USAGE, created_at=T0 + n))
    for n in range(4):
        rows.append(batch_json(id=f"batch_u{n}", model="mystery-model", usage=USAGE, created_at=T0 + 100 + n))
    for n in range(3):
        rows.append(batch_json(id=f"batch_n{n}", model="gpt-4o-mini", created_at=T0 + 200 + n))
    rows.append(batch_json(id="batch_fail", model="gpt-4o-mini", usage=USAGE, created_at=T0 + 300,
                           request_counts={"total": 10, "completed": 2, "failed": 8}))
    risky = {**at_risk_fields(now), "id": "batch_risky", "created_at": now - 3700}
    rows.append(batch_json(**risky))
    rows.append(batch_json(id="batch_run2", status="in_progress", created_at=now - 100, in_progress_at=now - 90,
                           expires_at=now + 80000, request_counts={"total": 10, "completed": 1, "failed": 0}))
    index("default", *rows)
    return rows


def test_filtered_rows_show_cost_and_flags_with_one_sample_query(client, indexed):
    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"{LIST}?created_after=2020-01-01&limit=100").content.decode()
    assert len(sample_queries(queries)) == 1
    rows = dict(re.findall(r'<tr id="row-([^"]+)" class="batch-row[^"]*">(.*?)</tr>', body, re.S))
    assert len(rows) == 40
    record = BatchRecord.objects.get(batch_id="batch_p00")
    assert f'<span class="cost">{pricing.batch_price(record).display}</span>' in rows["batch_p00"]
    assert "flag-at-risk" in rows["batch_risky"]
    assert "flag-failing" in rows["batch_fail"]
    assert "does not know the model" in rows["batch_u0"]
    assert "reported no token usage" in rows["batch_n0"]
    assert all(cells.count('<td class="col-cost">') == 1 for cells in rows.values())
    assert '<th scope="col" class="col-cost"' in body


def test_a_filtered_view_totals_its_cost_over_every_page_in_one_grouped_query(client, indexed):
    """The page answers without the total (a grouped query over everything the filter matches) and
    loads it once shown; the total covers every page, not just the rows shown, and is kept until the
    index changes."""
    expected = pricing.price_total(BatchRecord.objects.filter(project="default", status="completed"))
    assert expected.batches == 38 and expected.unpriced == 7
    assert expected.sentence == f"{pricing.money(expected.amount)} for 38 batches; 7 without a known price"
    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"{LIST}?status=completed&limit=10").content.decode()
    assert not [q for q in queries.captured_queries if "SUM(" in q["sql"].upper()]
    assert 'hx-get="/projects/default/batches/cost/?status=completed" hx-trigger="load"' in body
    with CaptureQueriesContext(connection) as queries:
        total = client.get("/projects/default/batches/cost/?status=completed", headers=HTMX).content.decode()
    assert len([q for q in queries.captured_queries if "SUM(" in q["sql"].upper()]) == 1
    assert f"Estimated cost: <strong>{expected.sentence}</strong>" in total and "<html" not in total
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/projects/default/batches/cost/?status=completed", headers=HTMX).content.decode()
    assert again == total and not [q for q in queries.captured_queries if "SUM(" in q["sql"].upper()]
    # Not just the ten rows shown: the total covers the whole filter.
    page = pricing.price_total(BatchRecord.objects.filter(batch_id__in=re.findall(r'<tr id="row-([^"]+)"', body)))
    assert page.amount < expected.amount
    # Without JavaScript the link opens the total as a page of its own.
    cold = client.get("/projects/default/batches/cost/?status=completed").content.decode()
    assert "<html" in cold and expected.sentence in cold and 'href="/projects/default/batches/?status=completed"' in cold


def test_search_totals_the_cost_of_what_it_finds(client, indexed):
    expected = pricing.price_total(BatchRecord.objects.filter(model="mystery-model"))
    body = client.get("/search/?model=mystery-model").content.decode()
    assert 'hx-get="/search/cost/?model=mystery-model"' in body
    assert "batches indexed back to the first batch; backfill done" in body
    total = client.get("/search/cost/?model=mystery-model", headers=HTMX).content.decode()
    assert expected.sentence == "$0.00 for 4 batches; 4 without a known price"
    assert f"Estimated cost: <strong>{expected.sentence}</strong>" in total


# -- polling of filtered views ------------------------------------------------------------------------


def test_a_filtered_view_with_unfinished_rows_polls_itself_and_stops_when_all_have_finished(client, indexed):
    body = client.get(f"{LIST}?status=in_progress").content.decode()
    table = section(body, "batch-table")
    assert table.startswith('id="batch-table" class="table-section find-section"\n         hx-get="/projects/default/batches/?status=in_progress"')
    assert 'hx-trigger="every ' in table[:300]
    done = client.get(f"{LIST}?status=completed").content.decode()
    assert 'hx-trigger="every ' not in section(done, "batch-table")[:300]


def test_search_with_unfinished_rows_polls_itself_and_stops_when_all_have_finished(client, indexed):
    table = section(client.get("/search/?status=in_progress").content.decode(), "batch-table")
    assert table.startswith('id="batch-table" class="table-section find-section"\n         hx-get="/search/?status=in_progress"')
    assert 'hx-trigger="every ' in table[:300]
    done = client.get("/search/?status=completed").content.decode()
    assert 'hx-trigger="every ' not in section(done, "batch-table")[:300]


def test_the_cost_footnote_has_no_brackets_inside_brackets(client, indexed):
    total = client.get(f"{LIST}cost/?status=completed", headers=HTMX).content.decode()
    footnote = total.split("</strong>", 1)[1]
    assert footnote.startswith(". <span class=\"muted\">Batch API rates from genai-prices ")
    assert "))" not in total and "(Batch API" not in total


def test_a_poll_of_a_filtered_view_does_not_swap_the_filter_form_but_a_chip_click_does(client, indexed):
    poll = client.get(f"{LIST}?status=in_progress", headers={**HTMX, "HX-Trigger": "batch-table"}).content.decode()
    assert 'id="filter-form"' not in poll
    assert poll.lstrip().startswith('<section id="batch-table"')
    click = client.get(f"{LIST}?status=in_progress", headers=HTMX).content.decode()
    assert 'id="filter-form"' in click and 'hx-swap-oob="true"' in click


# -- exports -------------------------------------------------------------------------------------------------


def test_the_csv_export_carries_cost_note_and_flags_and_is_streamed(client, indexed):
    response = client.get("/projects/default/batches/export.csv?sort=-created")
    assert response.streaming
    rows = {row["batch_id"]: row for row in csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode()))}
    assert len(rows) == 40
    record = BatchRecord.objects.get(batch_id="batch_p00")
    assert rows["batch_p00"]["cost_usd"] == f"{pricing.batch_price(record).amount:.6f}"
    assert rows["batch_p00"]["cost_note"].startswith("genai-prices")
    assert rows["batch_u0"]["cost_usd"] == "" and "does not know the model" in rows["batch_u0"]["cost_note"]
    assert rows["batch_n0"]["cost_note"] == pricing.NO_USAGE
    assert rows["batch_fail"]["flags"] == "failing"
    assert rows["batch_risky"]["flags"] == "at-risk"
    assert rows["batch_p00"]["flags"] == ""


def test_the_jsonl_export_carries_cost_and_flags_as_a_list(client, indexed):
    response = client.get("/projects/default/batches/export.jsonl?status=in_progress")
    assert response.streaming
    lines = [json.loads(line) for line in b"".join(response.streaming_content).decode().splitlines()]
    by_id = {line["batch_id"]: line for line in lines}
    assert set(by_id) == {"batch_risky", "batch_run2"}
    assert by_id["batch_risky"]["flags"] == ["at-risk"]
    assert by_id["batch_risky"]["cost_usd"] is None and by_id["batch_risky"]["cost_note"] == pricing.NO_USAGE


# -- backfill progress -----------------------------------------------------------------------------------------


def test_the_live_list_says_how_far_the_backfill_has_come(client, upstream, indexed):
    SyncState.objects.filter(project="default").update(
        backfill_done=False, backfill_oldest_created_at=int(timezone.datetime(2025, 3, 2, 12, tzinfo=timezone.UTC).timestamp())
    )
    body = client.get(LIST).content.decode()
    assert "40 batches indexed back to 2 March 2025; backfill running." in body


def test_a_filtered_view_says_the_backfill_is_done_without_counting_again(client, indexed):
    with CaptureQueriesContext(connection) as queries:
        body = client.get(f"{LIST}?status=completed").content.decode()
    assert "40 batches indexed back to the first batch; backfill done." in body
    states = [q for q in queries.captured_queries if "batches_syncstate" in q["sql"]]
    assert len(states) == 2  # the freshness line's read (shared with the backfill line) and the counts snapshot
    counts = [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper() and "GROUP BY" not in q["sql"].upper()]
    assert counts == []


def test_a_project_never_synced_says_so_in_the_backfill_line(client, upstream):
    body = client.get(LIST).content.decode()
    assert "0 batches indexed; the sync has not run yet." in body


# -- the create page's estimate ------------------------------------------------------------------------------


def test_the_create_page_explains_the_estimate_and_that_it_needs_javascript(client, upstream, settings):
    settings.DASHBOARD_AUTH = "none"
    body = client.get("/projects/default/batches/new/").content.decode()
    assert 'id="cost-estimate" data-price-url="/projects/default/price/"' in body
    assert 'data-bytes-per-token="4" data-tokens-per-message="3"' in body
    assert "The cost estimate needs JavaScript" in body
    assert "about 4 bytes of request text per token, plus 3 tokens per chat message" in body
    assert "OpenAI's bill is authoritative" in body
    assert "<script>" not in body and " onchange=" not in body


def test_the_price_endpoint_answers_a_models_batch_rates_without_an_upstream_call(client, emulator, settings):
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"  # nothing listens: any upstream call would fail
    response = client.get("/projects/default/price/?model=gpt-4o-mini-2024-07-18")
    data = response.json()
    rates = pricing.rates_for("gpt-4o-mini-2024-07-18")
    assert response.status_code == 200 and data["known"] is True
    assert data["rates"] == {"input": str(rates.input), "cached_input": str(rates.cached_input), "output": str(rates.output)}
    assert data["model_id"] == "gpt-4o-mini" and data["per_tokens"] == 1_000_000
    assert data["price_data"].startswith("genai-prices ")
    assert data["bytes_per_token"] == 4 and data["tokens_per_message"] == 3


def test_the_price_endpoint_says_no_price_with_the_reason(client):
    unknown = client.get("/projects/default/price/?model=mystery-model").json()
    assert unknown["known"] is False and "does not know the model “mystery-model”" in unknown["reason"]
    missing = client.get("/projects/default/price/").json()
    assert missing["known"] is False and "names no model" in missing["reason"]
    too_long = client.get("/projects/default/price/?model=" + "x" * 300)
    assert too_long.status_code == 400 and too_long.json()["known"] is False


def test_the_price_endpoint_uses_negotiated_overrides(client, settings):
    settings.DASHBOARD_PRICE_OVERRIDES = json.dumps({"gpt-4o-mini": {"input": 0.05, "output": 0.2}})
    try:
        data = client.get("/projects/default/price/?model=gpt-4o-mini-2024-07-18").json()
        assert data["rates"]["input"] == "0.05" and data["rates_source"] == "override"
    finally:
        settings.DASHBOARD_PRICE_OVERRIDES = ""
        pricing.overrides()


def test_the_price_endpoint_of_a_hidden_or_unknown_project_is_a_404(client):
    assert client.get("/projects/nope/price/?model=gpt-4o-mini").status_code == 404
    assert client.post("/projects/default/price/?model=gpt-4o-mini").status_code == 405  # a read-only endpoint
