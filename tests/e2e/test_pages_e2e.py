"""The pages added for finding and oversight, opened as a new operator would, in a real headless Chromium
against gunicorn + the emulator with two projects: search, insights, notifications and rules, the projects
overview and a filtered list. Each opens with the strict CSP intact (no console error), nothing leaves
127.0.0.1 (the ``guarded_page`` fixture), the header marks where you are, the project switcher behaves as a
menu, and the filtered table keeps each header over its own column at phone width."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import start_dashboard

pytestmark = pytest.mark.e2e

PROJECTS = {"default": "sk-e2e-pages-default", "research": "sk-e2e-pages-research"}
PHONE = {"width": 390, "height": 844}

def index_projects(server, projects: dict[str, str]) -> dict[str, list[dict]]:
    """Index each project's first page of batches into the dashboard's database, as a sync pass would."""
    listed = {}
    for slug, key in projects.items():
        server.emulator_api_key = key
        listed[slug] = server.upstream("/v1/batches?limit=100")["data"]
    server.index(listed)
    return listed


@pytest.fixture(scope="module")
def two_projects(tmp_path_factory):
    with start_dashboard(tmp_path_factory.mktemp("pages-dashboard"), projects=PROJECTS) as server:
        server.listed = index_projects(server, PROJECTS)
        yield server


def test_each_new_page_opens_with_its_heading_and_marks_itself_in_the_header(guarded_page: Page, two_projects, screenshots_dir):
    page = guarded_page
    base = two_projects.url
    pages = [
        ("/projects/", "Projects", "Projects"),
        ("/search/", "Search", "Search"),
        ("/search/?status=failed&status=expired", "Search", "Search"),
        ("/insights/", "Insights", "Insights"),
        ("/projects/research/insights/", "Insights", "Insights"),
        ("/notifications/", "Notifications", "Notifications"),
        ("/projects/default/notifications/", "Notification rules", "Rules"),
        ("/projects/default/batches/?status=in_progress&status=failed", "Batches", "Batches"),
        ("/audit/", "Audit trail", "Audit"),
    ]
    for path, heading, nav in pages:
        response = page.goto(base + path)
        assert response is not None and response.status == 200, path
        expect(page.locator("main h1")).to_contain_text(heading)
        expect(page.locator(".site-nav a[aria-current='page']")).to_have_text(nav)
    # The search page counts both projects and shows rows of each.
    page.goto(base + "/search/")
    expect(page.locator(".find-projects tbody tr")).to_have_count(2)
    projects_shown = set(page.locator("#batch-table td.col-project a").all_inner_texts())
    assert projects_shown == {"Default", "Research"}
    page.screenshot(path=screenshots_dir / "search.png", full_page=True)
    # The filtered list: chips above the table, one active per chosen status.
    page.goto(base + "/projects/default/batches/?status=in_progress&status=failed")
    expect(page.locator(".find-chip[aria-current='true']")).to_have_count(2)
    expect(page.locator("#batch-table tbody tr[id^='row-']").first).to_be_visible()
    page.screenshot(path=screenshots_dir / "batch-list-filtered.png", full_page=True)


def test_the_project_switcher_is_a_menu_that_keeps_the_kind_of_page(guarded_page: Page, two_projects):
    page = guarded_page
    page.goto(two_projects.url + "/projects/default/insights/")
    switcher = page.locator("details.switcher")
    menu = switcher.locator(".switcher-menu")
    expect(menu).to_be_hidden()
    switcher.locator("summary").click()
    expect(menu).to_be_visible()
    expect(menu.locator("a[aria-current='page']")).to_contain_text("Default")
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    switcher.locator("summary").click()
    page.locator("main h1").click()  # a click elsewhere closes it
    expect(menu).to_be_hidden()
    switcher.locator("summary").click()
    menu.get_by_role("link", name="Research").click()
    page.wait_for_url("**/projects/research/insights/")
    expect(page.locator("main h1")).to_contain_text("Research")


def test_at_phone_width_the_switcher_panel_and_the_filtered_table_fit(guarded_page: Page, two_projects):
    page = guarded_page
    page.set_viewport_size(PHONE)
    page.goto(two_projects.url + "/projects/default/batches/?status=in_progress&status=failed")
    page.locator("details.switcher summary").click()
    box = page.locator(".switcher-menu").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    page.keyboard.press("Escape")
    # Endpoint and times are left to the batch page here: every header left stands over its own cells.
    table = page.locator("#batch-table table.find-table")
    for column in ("col-id", "col-status", "col-progress"):
        header = table.locator(f"thead th.{column}").bounding_box()
        cell = table.locator(f"tbody tr[id^='row-'] td.{column}").first.bounding_box()
        assert header and cell and abs(header["x"] - cell["x"]) < 1, (column, header, cell)
    for column in ("col-endpoint", "col-time"):
        expect(table.locator(f"thead th.{column}")).to_be_hidden()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
