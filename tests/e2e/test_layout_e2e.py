"""What a new operator tripped over (issue #25), checked in a real headless Chromium against gunicorn and
the emulator: the lists fit their box at desktop widths, a phone shows rows before filters and keeps
Cancel in reach, the rules form shows each field only for its rule kind (with and without JavaScript),
and a submitted filter form leaves a URL of only the set fields (with and without JavaScript)."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.test_find_e2e import index_upstream

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
FILTERED = "/projects/default/batches/?status=in_progress&status=completed"


@pytest.fixture(scope="module")
def indexed(dashboard_server) -> list[dict]:
    return index_upstream(dashboard_server)


def table_fit(page: Page) -> dict:
    return page.evaluate(
        """() => { const table = document.querySelector('#batch-table table.batches');
                   const box = table.closest('.table-scroll');
                   const cancel = table.querySelector('.col-actions button');
                   const b = cancel.getBoundingClientRect(), r = box.getBoundingClientRect();
                   return {table: table.scrollWidth, box: box.clientWidth, cancelRight: b.right, boxRight: r.right}; }"""
    )


@pytest.mark.parametrize("width", [1280, 1440, 1920])
@pytest.mark.parametrize("path", ["/projects/default/batches/", FILTERED])
def test_the_lists_fit_their_box_with_the_cancel_buttons_in_view_at_desktop_widths(guarded_page: Page, dashboard_server,
                                                                                  indexed, width, path):
    page = guarded_page
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(dashboard_server.url + path)
    fit = table_fit(page)
    assert fit["table"] <= fit["box"], fit
    assert fit["cancelRight"] <= fit["boxRight"], fit


def test_on_a_phone_the_filters_fold_away_and_the_set_ones_are_removable_chips(guarded_page: Page, dashboard_server,
                                                                              indexed, screenshots_dir):
    page = guarded_page
    page.set_viewport_size(PHONE)
    # Finished batches only: the page does not poll, so the click below races no refresh.
    page.goto(dashboard_server.url + "/projects/default/batches/?status=completed&status=failed")
    fold = page.locator("#filter-fold")
    expect(fold.locator("summary")).to_have_text("Filters 2")
    expect(page.locator("#filter-form input[name='q']")).to_be_hidden()
    first_row = page.locator("#batch-table tbody tr[id^='row-']").first
    assert first_row.bounding_box()["y"] < PHONE["height"], "the first row must start on the first screen"
    chips = page.locator("#active-filters a")
    expect(chips).to_have_text(["status: completed × (remove this filter)", "status: failed × (remove this filter)"])
    expect(page.locator("#find-cost strong")).to_be_visible()  # the cost total has loaded
    page.screenshot(path=screenshots_dir / "batch-list-filtered-phone.png")
    chips.first.click()
    page.wait_for_url("**/projects/default/batches/?status=failed")
    expect(page.locator("#active-filters a")).to_have_count(1)
    fold.locator("summary").click()
    expect(page.locator("#filter-form input[name='q']")).to_be_visible()


def test_at_desktop_width_the_filters_show_without_a_fold(guarded_page: Page, dashboard_server, indexed):
    page = guarded_page
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(dashboard_server.url + FILTERED)
    expect(page.locator("#filter-fold summary")).to_be_hidden()
    expect(page.locator("#filter-form input[name='q']")).to_be_visible()
    expect(page.locator("#active-filters")).to_be_hidden()


@pytest.mark.parametrize("path", ["/projects/default/batches/", FILTERED])
def test_on_a_phone_a_rows_cancel_is_in_reach_without_panning(guarded_page: Page, dashboard_server, indexed, path):
    page = guarded_page
    page.set_viewport_size(PHONE)
    page.goto(dashboard_server.url + path)
    button = page.locator("#batch-table tbody .col-actions button").first
    box = button.bounding_box()
    assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def _rules_threshold_visibility(page: Page, url: str) -> list[bool]:
    page.goto(url)
    threshold = page.locator("#id_threshold")
    seen = [threshold.is_visible()]
    page.locator("input[name='kind'][value='failure_rate_above']").check()
    seen.append(threshold.is_visible())
    page.locator("input[name='kind'][value='at_risk']").check()
    seen.append(threshold.is_visible())
    return seen


def test_the_rules_form_shows_the_threshold_only_for_the_failure_rate_rule(guarded_page: Page, dashboard_server):
    assert _rules_threshold_visibility(guarded_page, f"{dashboard_server.url}/projects/default/notifications/") == [
        False, True, False
    ]


def test_the_rules_form_shows_the_threshold_only_for_the_failure_rate_rule_without_javascript(browser: Browser,
                                                                                             dashboard_server):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        assert _rules_threshold_visibility(page, f"{dashboard_server.url}/projects/default/notifications/") == [
            False, True, False
        ]
    finally:
        context.close()


def _submit_failed_only(page: Page, url: str) -> str:
    page.goto(url)
    page.locator("#filter-form input[name='status'][value='failed']").check()
    page.locator("#filter-form button[type='submit']").click()
    page.wait_for_url("**?status=failed")
    return urlsplit(page.url).query


def test_submitting_the_filter_form_gives_a_url_of_only_the_set_fields(guarded_page: Page, dashboard_server, indexed):
    page = guarded_page
    page.set_viewport_size({"width": 1280, "height": 900})
    assert _submit_failed_only(page, f"{dashboard_server.url}/projects/default/batches/") == "status=failed"
    assert _submit_failed_only(page, f"{dashboard_server.url}/search/") == "status=failed"


def test_without_javascript_the_server_shortens_the_submitted_url(browser: Browser, dashboard_server, indexed):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        assert _submit_failed_only(page, f"{dashboard_server.url}/projects/default/batches/") == "status=failed"
        assert _submit_failed_only(page, f"{dashboard_server.url}/search/") == "status=failed"
    finally:
        context.close()
