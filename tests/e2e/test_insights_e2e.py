"""The insights page in a real headless Chromium, served by gunicorn with the production CSP: charts
render as inline SVG coloured by the stylesheet, the range form swaps the charts through htmx and pushes
the URL, the numbers open, a CSV downloads; no CSP violation, no request leaves 127.0.0.1.

The index is filled by writing rows straight into this server's own SQLite database (its own server, so
the shared one's index is untouched)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import start_dashboard

pytestmark = pytest.mark.e2e

TODAY = datetime.now(tz=UTC).date()
MODELS = ("gpt-4o-mini", "gpt-4.1", "mystery-model")


def seed(db_path, days: int = 10) -> int:
    """A few batches a day over ``days`` days, with every outcome, usage and three models."""
    now = datetime.now(tz=UTC).isoformat(sep=" ")
    rows = []
    statuses = ("completed", "completed", "failed", "expired", "in_progress", "cancelled")
    for day in range(days):
        created = int(datetime(TODAY.year, TODAY.month, TODAY.day, 9, tzinfo=UTC).timestamp()) - day * 86400
        for n, status in enumerate(statuses[: 2 + day % 5]):
            model = MODELS[(day + n) % 3]
            usage = (100_000 * (n + 1), 20_000, 30_000 * (n + 1)) if status == "completed" else (None, None, None)
            rows.append((
                "default", f"batch_e2e_{day}_{n}", status, "/v1/chat/completions", model, created + n * 60,
                created + 3600 * (n + 1) if status == "completed" else None, created + 86400,
                100, 90 if status != "failed" else 0, 10 if status != "failed" else 100, "{}", *usage,
                "", "", "", "", json.dumps({"id": f"batch_e2e_{day}_{n}"}), now, now, "",
            ))
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO batches_batchrecord (project, batch_id, status, endpoint, model, created_at, completed_at, expires_at,"
            " total_requests, completed_requests, failed_requests, metadata, input_tokens, cached_tokens, output_tokens,"
            " input_file_id, output_file_id, error_file_id, search_text, raw, first_seen, last_synced, created_by)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


@pytest.fixture(scope="module")
def insights_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("insights-dashboard")
    with start_dashboard(tmp) as server:
        server.seeded = seed(tmp / "db.sqlite3")
        yield server


def test_the_insights_page_draws_its_charts_swaps_the_range_and_downloads_csv(guarded_page: Page, insights_server, screenshots_dir):
    page = guarded_page
    start = TODAY - timedelta(days=9)
    page.goto(f"{insights_server.url}/projects/default/insights/?from={start.isoformat()}&to={TODAY.isoformat()}")
    expect(page.locator("svg.chart")).to_have_count(4)
    expect(page.locator(".insights-summary")).to_contain_text(f"for {insights_server.seeded} batches")
    expect(page.locator(".insights-summary")).to_contain_text("without a known price")
    # The stylesheet colours the bars (no style= attributes, no inline CSS): a completed bar is green.
    fill = page.locator("#chart-outcomes rect.outcome-completed").first.evaluate("r => getComputedStyle(r).fill")
    assert fill == "rgb(26, 127, 55)"
    page.screenshot(path=screenshots_dir / "insights.png", full_page=True)

    page.locator("#chart-requests details summary").click()
    expect(page.locator("#chart-requests table tbody tr")).to_have_count(10)

    with page.expect_download() as download_info:
        page.locator("#chart-cost a.chart-csv").click()
    download = download_info.value
    assert download.suggested_filename == f"insights-default-cost-{start.isoformat()}-{TODAY.isoformat()}.csv"
    assert open(download.path(), encoding="utf-8").read().startswith("day,")

    page.evaluate("window.__sameDocument = true")
    page.locator("input[name=from]").fill(TODAY.isoformat())
    page.get_by_role("button", name="Show").click()
    page.wait_for_url(f"**/projects/default/insights/?from={TODAY.isoformat()}&to={TODAY.isoformat()}")
    expect(page.locator(".insights-range-label")).to_have_text(f"{TODAY.isoformat()} to {TODAY.isoformat()} (1 day)")
    assert page.evaluate("window.__sameDocument === true"), "the range form should swap the charts through htmx"

    page.goto(f"{insights_server.url}/insights/?from=not-a-date")
    expect(page.locator("#insights-body .message-warning")).to_contain_text("must be a date like")
    expect(page.locator("svg.chart")).to_have_count(4)
