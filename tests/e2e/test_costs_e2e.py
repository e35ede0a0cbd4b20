"""The costs page in a real headless Chromium, served by gunicorn with the production CSP: the budget
bar, the estimated-vs-billed chart drawn as inline SVG coloured by the stylesheet, the day table, the
month form swapping the body through htmx and pushing the URL, and the CSV download; no CSP violation,
no request leaves 127.0.0.1.

The index and the fetched bill are written straight into this server's own SQLite database."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import EMULATOR_KEY, start_dashboard

pytestmark = pytest.mark.e2e

TODAY = datetime.now(tz=UTC).date()
FIRST = TODAY.replace(day=1)
BUDGET = """
[projects.default.budget]
monthly_usd = 50
alert_at = [0.5, 1.0]
"""


def seed(db_path) -> None:
    """One completed gpt-4o-mini batch a day this month (1M input, 200k output tokens: $0.135 at batch
    rates), and a bill for each day before today a little above the estimate."""
    now = datetime.now(tz=UTC).isoformat(sep=" ")
    records, bills = [], []
    day = FIRST
    while day <= TODAY:
        created = int(datetime(day.year, day.month, day.day, 9, tzinfo=UTC).timestamp())
        records.append((
            "default", f"batch_cost_{day.day}", "completed", "/v1/chat/completions", "gpt-4o-mini", created, created + 3600,
            created + 86400, 100, 100, 0, "{}", 1_000_000, 0, 200_000, "", "", "", "", json.dumps({"id": f"batch_cost_{day.day}"}),
            now, now, "",
        ))
        if day < TODAY:
            bills.append(("proj_e2e", day.isoformat(), "gpt-4o-mini-2024-07-18, input", "0.16", "usd", None, "", now))
        day += timedelta(days=1)
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO batches_batchrecord (project, batch_id, status, endpoint, model, created_at, completed_at, expires_at,"
            " total_requests, completed_requests, failed_requests, metadata, input_tokens, cached_tokens, output_tokens,"
            " input_file_id, output_file_id, error_file_id, search_text, raw, first_seen, last_synced, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            records,
        )
        db.executemany(
            "INSERT INTO costs_billedcost (upstream_project, day, line_item, amount, currency, quantity, quantity_unit, fetched_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            bills,
        )
        db.execute(
            "INSERT INTO costs_billingsync (name, lease_owner, last_success, last_error, first_day, last_day)"
            " VALUES ('organization', '', ?, '', ?, ?)",
            (now, (FIRST - timedelta(days=31)).isoformat(), TODAY.isoformat()),
        )


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
    expect(page.locator("svg.chart rect.series-1")).to_have_count(days - 1)
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
