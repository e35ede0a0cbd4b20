"""The costs page in a real headless Chromium, served by gunicorn with the production CSP: the budget
bar, the estimated-vs-billed chart drawn as inline SVG coloured by the stylesheet, the day table, the
month form swapping the body through htmx and pushing the URL, and the CSV download; no CSP violation,
no request leaves 127.0.0.1.

The index and the fetched bill are written straight into this server's own SQLite database."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from batches.models import BatchRecord
from tests.e2e.helpers import EMULATOR_KEY, start_dashboard

pytestmark = pytest.mark.e2e

TODAY = datetime.now(tz=UTC).date()
FIRST = TODAY.replace(day=1)
BUDGET = """
[projects.default.budget]
monthly_usd = 50
alert_at = [0.5, 1.0]
"""


def with_defaults(model, row: dict) -> dict:
    """``row`` plus the model's defaults for the columns it leaves out (new columns keep the seed working)."""
    for field in model._meta.concrete_fields:
        if field.column not in row and not field.primary_key:
            value = field.get_default()  # "" for a text column without a default, None when nullable
            row[field.column] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return row


def insert(db, table: str, rows: list[dict]) -> None:
    columns = list(rows[0])
    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                   [tuple(row[c] for c in columns) for row in rows])


def seed(db_path) -> None:
    """One completed gpt-4o-mini batch a day this month (1M input, 200k output tokens: $0.135 at batch
    rates), and a bill for each day before today a little above the estimate."""
    now = datetime.now(tz=UTC).isoformat(sep=" ")
    records, bills = [], []
    day = FIRST
    while day <= TODAY:
        created = int(datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp())
        batch_id = f"batch_cost_{day.day}"
        records.append(with_defaults(BatchRecord, {
            "project": "default", "batch_id": batch_id, "status": "completed", "endpoint": "/v1/chat/completions",
            "model": "gpt-4o-mini", "created_at": created, "completed_at": created + 3600, "expires_at": created + 86400,
            "total_requests": 100, "completed_requests": 100, "failed_requests": 0, "metadata": "{}",
            "input_tokens": 1_000_000, "cached_tokens": 0, "output_tokens": 200_000, "input_file_id": "", "output_file_id": "",
            "error_file_id": "", "search_text": "", "raw": json.dumps({"id": batch_id}), "first_seen": now, "last_synced": now,
            "created_by": "",
        }))
        if day < TODAY:
            bills.append({"upstream_project": "proj_e2e", "day": day.isoformat(), "line_item": "gpt-4o-mini-2024-07-18, input",
                          "amount": "0.16", "currency": "usd", "quantity": None, "quantity_unit": "", "fetched_at": now})
        day += timedelta(days=1)
    with sqlite3.connect(db_path) as db:
        insert(db, "batches_batchrecord", records)
        if bills:
            insert(db, "costs_billedcost", bills)
        insert(db, "costs_billingsync", [{"name": "organization", "lease_owner": "", "last_success": now, "last_error": "",
                                          "first_day": (FIRST - timedelta(days=31)).isoformat(), "last_day": TODAY.isoformat()}])


@pytest.fixture(scope="module")
def costs_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("costs-dashboard")
    with start_dashboard(tmp, projects={"default": EMULATOR_KEY}) as server:
        projects = tmp / "projects.toml"
        # The projects file is re-read when it changes: add the OpenAI project id and a budget.
        projects.write_text(projects.read_text().replace('name = "Default"', 'name = "Default"\nproject = "proj_e2e"') + BUDGET)
        seed(tmp / "db.sqlite3")
        yield server


def test_the_costs_page_draws_estimated_and_billed_swaps_the_month_and_downloads_csv(guarded_page: Page, costs_server, screenshots_dir):
    page = guarded_page
    page.goto(f"{costs_server.url}/projects/default/costs/")
    days = (TODAY - FIRST).days + 1
    expect(page.locator(".budget-bar .budget-line")).to_contain_text("of $50.00 this month, forecast")
    expect(page.locator("svg.chart")).to_have_count(1)
    expect(page.locator("svg.chart rect.series-0")).to_have_count(days)
    expect(page.locator("svg.chart rect.series-1")).to_have_count(days - 1)  # no bill for today yet
    # The stylesheet colours the bars (no style= attribute, no inline CSS).
    fill = page.locator("svg.chart rect.series-0").first.evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(33, 85, 196)"
    expect(page.locator("table.costs-days tbody tr")).to_have_count(days)
    expect(page.locator("table.costs-days tbody tr").first).to_contain_text("$0.14")
    page.screenshot(path=screenshots_dir / "costs.png", full_page=True)

    with page.expect_download() as download_info:
        page.locator("#chart-costs a.chart-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"costs-default-{FIRST:%Y-%m}.csv"
    lines = open(download.path(), encoding="utf-8").read().splitlines()
    assert lines[0] == "day,estimated_usd,billed_usd,difference_usd,drift,notes"
    assert len(lines) == days + 1

    previous = (FIRST - timedelta(days=1)).strftime("%Y-%m")
    page.locator("input[name=month]").fill(previous)
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(f"{costs_server.url}/projects/default/costs/?month={previous}")
    expect(page.locator("#costs-body")).to_contain_text(f"Budgets speak about the current month; this is {previous}.")


def test_a_file_that_would_cross_a_blocking_budget_is_announced_in_the_browser_and_refused_with_nothing_uploaded(
    guarded_page: Page, costs_server, page_guard
):
    """The budget is set a hair above this month's spend (one $0.135 batch a day so far), so any file
    crosses it: the page's estimate says so while the file is still in the browser, and Create is
    refused before anything is uploaded."""
    page = guarded_page
    projects = Path(costs_server.logs["gunicorn"]).parent / "projects.toml"
    original = projects.read_text()
    spend = Decimal("0.135") * ((TODAY - FIRST).days + 1)
    projects.write_text(original.replace("monthly_usd = 50", f"monthly_usd = {spend + Decimal('0.000001')}\nblock_at_limit = true"))
    try:
        costs_server.reset_counts()
        page.goto(f"{costs_server.url}/projects/default/batches/new/")
        line = {"custom_id": "r1", "method": "POST", "url": "/v1/chat/completions",
                "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello " * 200}]}}
        page.set_input_files("#id_file", files=[{"name": "one.jsonl", "mimeType": "application/jsonl",
                                                 "buffer": (json.dumps(line) + "\n").encode()}])
        expect(page.locator("#estimate-result")).to_contain_text("over the budget of")
        expect(page.locator("#estimate-result")).to_contain_text("the dashboard will refuse to create this batch.")
        page.get_by_role("button", name="Validate, upload and create").click()
        expect(page.locator("#budget-refusal")).to_contain_text("this work's estimated")
        expect(page.locator("#budget-refusal")).to_contain_text("Nothing was uploaded and no batch was created.")
        counts = costs_server.stats()["counts"]
        assert (counts.get("POST /v1/files", 0), counts.get("POST /v1/batches", 0)) == (0, 0)
        # The refusal is an honest 403, which Chromium reports on the console: expected, and the only one.
        assert page_guard.console_errors == ["Failed to load resource: the server responded with a status of 403 (Forbidden)"]
        page_guard.console_errors.clear()
    finally:
        projects.write_text(original)
