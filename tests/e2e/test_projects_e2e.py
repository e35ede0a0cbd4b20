"""Two projects in a real Chromium: switch project from the header, see the other project's batches,
cancel one there and watch it turn cancelling without a reload."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import start_dashboard

pytestmark = pytest.mark.e2e

KEYS = {"default": "sk-e2e-default", "research": "sk-e2e-research"}


@pytest.fixture(scope="module")
def two_project_server(tmp_path_factory):
    with start_dashboard(tmp_path_factory.mktemp("projects"), projects=KEYS) as server:
        yield server


def upstream_ids(server, key: str) -> list[dict]:
    request = urllib.request.Request(f"{server.emulator_url}/v1/batches?limit=100", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def test_switch_project_see_its_batches_and_cancel_one_there(guarded_page: Page, two_project_server):
    page = guarded_page
    server = two_project_server
    default_ids = {b["id"] for b in upstream_ids(server, KEYS["default"])}
    research = upstream_ids(server, KEYS["research"])
    running = next(b["id"] for b in research if b["status"] == "in_progress")

    page.goto(f"{server.url}/")
    page.wait_for_url("**/projects/default/batches/")
    expect(page.locator(".switcher summary")).to_contain_text("Default")

    page.locator(".switcher summary").click()
    page.get_by_role("link", name="Research research").click()
    page.wait_for_url("**/projects/research/batches/")
    expect(page.locator(".switcher summary")).to_contain_text("Research")
    shown = page.locator("#batch-table tbody tr[id^='row-']").evaluate_all("rows => rows.map(r => r.id.slice(4))")
    assert shown and set(shown) <= {b["id"] for b in research} and not set(shown) & default_ids

    page.goto(f"{server.url}/projects/research/batches/{running}/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").click()
    expect(page.locator("#batch-live .badge").first).to_have_text("cancelling")
    assert page.url.endswith(f"/projects/research/batches/{running}/")
    after = {b["id"]: b["status"] for b in upstream_ids(server, KEYS["research"])}
    assert after[running] in ("cancelling", "cancelled")
