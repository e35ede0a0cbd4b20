"""An Anthropic project in a real browser (gunicorn and the emulator as processes): its list says how
many requests are processing, a cancel shows cancelling (Anthropic's ``canceling``) and then the ended
batch as cancelled without a reload, and its results page joins the results file by custom_id."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import EMULATOR_KEY, DashboardServer, start_dashboard

ANTHROPIC_KEY = "sk-ant-e2e-providers"
HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
PARAMS = {"model": "claude-haiku-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def projects_toml(emulator_url: str) -> str:
    return (
        f'[projects.default]\nname = "OpenAI"\napi_key_env = "E2E_KEY_OPENAI"\nbase_url = "{emulator_url}/v1"\n'
        f'[projects.claude]\nname = "Claude"\napi_key_env = "E2E_KEY_CLAUDE"\nprovider = "anthropic"\n'
        f'base_url = "{emulator_url}"\n'
    )


@pytest.fixture(scope="module")
def claude_server(tmp_path_factory) -> Iterator[DashboardServer]:
    """The dashboard with an OpenAI project and an Anthropic one, both served by the emulator."""
    with start_dashboard(
        tmp_path_factory.mktemp("providers"),
        extra_env={"E2E_KEY_OPENAI": EMULATOR_KEY, "E2E_KEY_CLAUDE": ANTHROPIC_KEY},
        emulator_args=("--anthropic-key", f"claude={ANTHROPIC_KEY}"),
        projects_toml=projects_toml,
    ) as server:
        yield server


def create_batch(server: DashboardServer, prefix: str, n: int) -> str:
    """A Message Batch made straight at the emulator (the dashboard's own create is tested over loopback)."""
    requests = [{"custom_id": f"{prefix}-{i}", "params": PARAMS} for i in range(n)]
    response = httpx.post(f"{server.emulator_url}/v1/messages/batches", headers=HEADERS,
                          content=json.dumps({"requests": requests}), timeout=10)
    response.raise_for_status()
    return response.json()["id"]


def test_an_anthropic_projects_list_says_how_many_requests_are_processing(guarded_page: Page, claude_server):
    batch_id = create_batch(claude_server, "list", 40)
    page = guarded_page
    page.goto(f"{claude_server.url}/projects/claude/batches/")
    row = page.locator(f"[id='row-{batch_id}']")
    expect(row.locator(".progress-text")).to_have_text("40 requests processing")
    expect(row.locator(".progress")).not_to_have_attribute("aria-valuenow", "0")
    expect(page.locator(".subtitle")).to_contain_text("Anthropic sends no webhooks for batches")


def test_a_cancel_shows_cancelling_then_the_ended_batch_as_cancelled(guarded_page: Page, claude_server, screenshots_dir):
    batch_id = create_batch(claude_server, "cxl", 500)
    page = guarded_page
    page.goto(f"{claude_server.url}/projects/claude/batches/{batch_id}/")
    status = page.locator("#batch-status")
    expect(status).to_have_text("in progress")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel batch").click()
    expect(status).to_have_text("cancelling", timeout=5000)
    expect(page.locator(".provider-status").first).to_have_text("canceling")
    claude_server.advance(30)  # the emulator's cancel finishes; the page polls every second
    expect(status).to_have_text("cancelled", timeout=10000)
    expect(page.locator(".provider-status").first).to_have_text("ended")
    page.screenshot(path=str(screenshots_dir / "anthropic-cancelled.png"), full_page=True)


def test_the_results_page_joins_an_ended_anthropic_batch_by_custom_id(guarded_page: Page, claude_server):
    batch_id = create_batch(claude_server, "res", 5)
    claude_server.advance(3600)
    page = guarded_page
    page.goto(f"{claude_server.url}/projects/claude/batches/{batch_id}/results/")
    expect(page.locator(".results-counts")).to_contain_text("succeeded")
    for i in range(5):
        expect(page.get_by_text(f"res-{i}", exact=True).first).to_be_visible()
    expect(page.get_by_role("link", name="Results file")).to_be_visible()
