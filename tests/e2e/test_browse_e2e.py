"""Browse in a real headless Chromium against gunicorn + the emulator: page forward with htmx, reload
the pushed URL, open a batch, cancel it and watch cancelling → cancelled without a reload. Every test
runs on ``guarded_page``: no request leaves 127.0.0.1, no console error (CSP), no JS exception."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e

ROWS = "#batch-table tbody tr[id^='row-']"


def row_ids(page: Page) -> list[str]:
    return [row_id.removeprefix("row-") for row_id in page.locator(ROWS).evaluate_all("rows => rows.map(r => r.id)")]


def mark_document(page: Page) -> None:
    """Tag the current document; the tag survives htmx swaps but not a reload or navigation."""
    page.evaluate("window.__sameDocument = true")


def same_document(page: Page) -> bool:
    return page.evaluate("window.__sameDocument === true")


def test_paging_forward_pushes_a_url_that_reloads_to_the_same_rows(guarded_page: Page, dashboard_server):
    page = guarded_page
    upstream_order = [b["id"] for b in dashboard_server.upstream("/v1/batches?limit=100")["data"]]

    page.goto(f"{dashboard_server.url}/batches/?limit=8")
    expect(page.locator(ROWS)).to_have_count(8)
    assert row_ids(page) == upstream_order[0:8]
    mark_document(page)

    page.get_by_role("link", name="Next ›").click()
    page.wait_for_url(f"**/batches/?after={upstream_order[7]}&limit=8")
    expect(page.locator(f"#row-{upstream_order[8]}")).to_be_visible()
    assert row_ids(page) == upstream_order[8:16]
    assert same_document(page), "Next should swap the table through htmx, not load a new page"

    pushed = page.url
    page.reload()
    assert page.url == pushed
    expect(page.locator(f"#row-{upstream_order[8]}")).to_be_visible()
    assert row_ids(page) == upstream_order[8:16]

    # Forward once more, back with "Previous", then "First page": all without leaving the document.
    mark_document(page)
    page.get_by_role("link", name="Next ›").click()
    expect(page.locator(f"#row-{upstream_order[16]}")).to_be_visible()
    page.get_by_role("link", name="‹ Previous").click()
    expect(page.locator(f"#row-{upstream_order[8]}")).to_be_visible()
    assert row_ids(page) == upstream_order[8:16]
    page.get_by_role("link", name="« First page").click()
    expect(page.locator(f"#row-{upstream_order[0]}")).to_be_visible()
    page.wait_for_url("**/batches/?limit=8")
    assert same_document(page)


def test_open_a_batch_and_cancel_it_watching_cancelling_then_cancelled(guarded_page: Page, dashboard_server, screenshots_dir):
    page = guarded_page
    batches = dashboard_server.upstream("/v1/batches?limit=100")["data"]
    running = next(b for b in batches if b["status"] == "in_progress")

    page.goto(f"{dashboard_server.url}/batches/?limit=100")
    page.locator(f"#row-{running['id']} a[href$='/{running['id']}/']").click()
    page.wait_for_url(f"**/batches/{running['id']}/")
    status = page.locator("#batch-status")
    expect(status).to_have_text("in progress")
    expect(page.locator("#batch-live")).to_have_attribute("hx-trigger", "every 1s")
    page.screenshot(path=screenshots_dir / "batch-detail.png", full_page=True)

    mark_document(page)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").click()
    # The cancel's own answer is shown at once: cancelling, visibly in progress, still polling.
    expect(status).to_have_text("cancelling", timeout=5000)
    expect(page.get_by_text("Cancel requested.")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel batch")).to_have_count(0)
    expect(page.locator("#batch-live")).to_have_attribute("hx-trigger", "every 1s")

    # Seeded batches drain in-flight requests for minutes: move the emulator's clock past that.
    dashboard_server.advance(600)
    expect(status).to_have_text("cancelled", timeout=15000)
    expect(page.locator("#batch-live")).not_to_have_attribute("hx-trigger", "every 1s")
    assert same_document(page), "the status changed without a reload"


def test_a_double_click_on_cancel_sends_one_request(guarded_page: Page, dashboard_server):
    page = guarded_page
    batches = dashboard_server.upstream("/v1/batches?limit=100")["data"]
    running = next(b for b in batches if b["status"] in ("in_progress", "finalizing", "validating"))
    page.goto(f"{dashboard_server.url}/batches/{running['id']}/")
    posts = []
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    page.on("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").dblclick()
    expect(page.locator("#batch-status")).to_have_text("cancelling", timeout=5000)
    assert posts == [f"{dashboard_server.url}/projects/default/batches/{running['id']}/cancel/"]


def test_screenshot_of_the_batch_list(guarded_page: Page, dashboard_server, screenshots_dir):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/")
    expect(page.locator(ROWS)).to_have_count(20)
    expect(page.locator(".status-unknown")).to_have_count(0)
    path = screenshots_dir / "batch-list.png"
    page.screenshot(path=path, full_page=True)
    assert path.stat().st_size > 10_000


def test_screenshot_of_a_completed_batch_with_failures(guarded_page: Page, dashboard_server, screenshots_dir):
    page = guarded_page
    batches = dashboard_server.upstream("/v1/batches?limit=100")["data"]
    partly_failed = next(
        b for b in batches
        if b["status"] == "completed" and 0 < b["request_counts"]["failed"] < b["request_counts"]["total"]
    )
    page.goto(f"{dashboard_server.url}/batches/{partly_failed['id']}/")
    expect(page.locator(".callout-warn")).to_contain_text("Completed with failures")
    expect(page.locator("#batch-live")).not_to_have_attribute("hx-trigger", "every 1s")
    page.locator("#raw-json summary").click()
    expect(page.locator("#raw-json pre")).to_contain_text(partly_failed["id"])
    page.screenshot(path=screenshots_dir / "batch-detail-completed.png", full_page=True)

    # Its results: every request with a one-line answer, the failed ones marked, the body a click away.
    page.get_by_role("link", name="View results").click()
    expect(page.locator("h1")).to_contain_text("Results of")
    expect(page.locator("tr.outcome-failed").first).to_contain_text("failed")
    page.locator(".body-details summary").first.click()
    expect(page.locator(".body-details pre").first).to_be_visible()
    page.screenshot(path=screenshots_dir / "batch-results.png", full_page=True)


def test_the_open_list_refreshes_with_one_list_request_per_poll_and_no_per_row_reads(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/?limit=50")
    expect(page.locator("#batch-table")).to_have_attribute("hx-trigger", "every 1s")
    live_rows = page.locator(f"{ROWS}.is-live").count()
    assert live_rows >= 1  # the seed keeps batches running
    dashboard_server.reset_counts()
    refreshed = []
    page.on("response", lambda response: "/projects/default/batches/?limit=50" in response.url and refreshed.append(response.status))
    page.wait_for_timeout(3500)
    counts = dashboard_server.stats()["counts"]
    assert len(refreshed) >= 2 and set(refreshed) == {200}  # the table polled itself
    assert counts.get("GET /v1/batches/{id}", 0) == 0  # no per-row reads
    assert 1 <= counts.get("GET /v1/batches", 0) <= len(refreshed)  # at most one list call per poll


def test_back_after_paging_shows_the_previous_page(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/?limit=5")
    first = row_ids(page)
    page.get_by_role("link", name="Next ›").click()
    page.wait_for_url("**after=**")
    expect(page.locator(f"#row-{first[0]}")).to_have_count(0)
    page.go_back()
    page.wait_for_url("**/batches/?limit=5")
    expect(page.locator(f"#row-{first[0]}")).to_be_visible()
    assert row_ids(page) == first


def test_a_row_cancel_turns_the_row_cancelling_in_place(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/?limit=100")
    row = page.locator(f"{ROWS}:has(button:has-text('Cancel'))").first
    row_id = row.get_attribute("id")
    mark_document(page)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator(f"[id='{row_id}'] .badge")).to_have_text("cancelling", timeout=5000)
    expect(page.locator(f"[id='{row_id}'] button")).to_have_count(0)
    assert same_document(page)


def test_the_guard_itself_catches_csp_violations_and_requests_leaving_loopback(guarded_page: Page, page_guard, dashboard_server):
    """The other tests' "no console error, nothing off loopback" only means something if the guard sees
    them: provoke both, check they were caught, then clear them so this test passes."""
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/?limit=1")
    page.evaluate("""() => {
        const s = document.createElement("script");
        s.textContent = "window.__inline = 1";
        document.head.appendChild(s);
    }""")
    page.wait_for_timeout(200)
    assert page.evaluate("window.__inline") is None  # the strict CSP refused the inline script
    assert any("Content Security Policy" in text for text in page_guard.console_errors)
    with pytest.raises(PlaywrightError):
        page.goto("https://cdn.example.com/htmx.min.js")
    assert page_guard.external_requests == ["https://cdn.example.com/htmx.min.js"]
    page_guard.console_errors.clear()
    page_guard.external_requests.clear()
