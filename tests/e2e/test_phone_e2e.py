"""At phone width (390 px) no page scrolls sideways: wide tables scroll inside their own box, and the
list keeps id, status and progress in view. In a real headless Chromium against gunicorn + the emulator."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.test_find_e2e import index_upstream

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}


def page_width(page: Page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_no_page_is_wider_than_a_phone(guarded_page: Page, dashboard_server, screenshots_dir):
    page = guarded_page
    page.set_viewport_size(PHONE)
    batches = index_upstream(dashboard_server)  # so the filtered list and search have rows
    running = next(b for b in batches if b["status"] == "in_progress")
    with_results = next(b for b in batches if b["status"] == "completed" and b["request_counts"]["failed"])
    base = f"{dashboard_server.url}/projects/default"
    pages = {
        "list": f"{base}/batches/",
        "running batch": f"{base}/batches/{running['id']}/",
        "completed batch": f"{base}/batches/{with_results['id']}/",
        "results": f"{base}/batches/{with_results['id']}/results/",
        "failed results": f"{base}/batches/{with_results['id']}/results/?filter=failed",
        "create": f"{base}/batches/new/",
        "audit": f"{dashboard_server.url}/audit/",
        "filtered list": f"{base}/batches/?status=in_progress&status=completed",
        "projects": f"{dashboard_server.url}/projects/",
        "search": f"{dashboard_server.url}/search/",
        "insights": f"{base}/insights/",
        "all insights": f"{dashboard_server.url}/insights/",
        "notifications": f"{dashboard_server.url}/notifications/",
        "rules": f"{base}/notifications/",
    }
    widths = {}
    for name, url in pages.items():
        page.goto(url)
        page.wait_for_load_state("load")
        widths[name] = page_width(page)
        if name == "list":
            page.screenshot(path=screenshots_dir / "batch-list-phone.png", full_page=True)
    too_wide = {name: width for name, width in widths.items() if width > PHONE["width"]}
    assert too_wide == {}, widths


def test_the_list_shows_id_status_and_progress_without_panning(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.set_viewport_size(PHONE)
    page.goto(f"{dashboard_server.url}/projects/default/batches/")
    row = page.locator("#batch-table tbody tr[id^='row-']").first
    expect(row).to_be_visible()
    for cell in (".col-id a", ".col-status .badge:not(.flag-badge)", ".col-progress"):
        box = row.locator(cell).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (cell, box)
