"""The index, live, in a real Chromium: a filtered view of a running batch shows it finishing without a
reload (the view polls while it shows unfinished rows; a sync pass tells the index), and the create
page estimates a file's cost in the browser before anything is uploaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.e2e.helpers import EMULATOR_KEY, start_dashboard

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A dashboard of our own: this module moves the emulator's clock and syncs the index."""
    with start_dashboard(tmp_path_factory.mktemp("live-index")) as running:
        yield running


def sync_once(server) -> None:
    """One sync pass, run as `scripts/run` runs it, against the dashboard's database and upstream."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_", "DATABASE_", "OPENAI_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings", DJANGO_DEBUG="1", DJANGO_SECRET_KEY="e2e-live-index",
        DATABASE_URL=f"sqlite:///{server.logs['gunicorn'].parent / 'db.sqlite3'}",
        OPENAI_API_KEY=EMULATOR_KEY, OPENAI_BASE_URL=f"{server.emulator_url}/v1",
    )
    subprocess.run([sys.executable, "manage.py", "sync_batches", "--once"], cwd=REPO, env=env, check=True,
                   capture_output=True, timeout=120)


def create_running_batch(server, requests: int = 1200) -> str:
    """A batch straight through the API (not the dashboard): big enough to run for a minute of the
    emulator's clock, so it is still running when first synced."""
    lines = "".join(
        json.dumps({"custom_id": f"live-{i}", "method": "POST", "url": "/v1/embeddings",
                    "body": {"model": "text-embedding-3-small", "input": f"text {i}"}}) + "\n"
        for i in range(requests)
    )
    headers = {"Authorization": f"Bearer {EMULATOR_KEY}"}
    with httpx.Client(base_url=f"{server.emulator_url}/v1", headers=headers, timeout=10) as client:
        upload = client.post("/files", data={"purpose": "batch"}, files={"file": ("live.jsonl", lines.encode())})
        upload.raise_for_status()
        batch = client.post("/batches", json={"input_file_id": upload.json()["id"], "endpoint": "/v1/embeddings",
                                              "completion_window": "24h"})
        batch.raise_for_status()
        return batch.json()["id"]


def test_a_filtered_view_shows_a_running_batch_finishing_without_a_reload(guarded_page: Page, server):
    batch_id = create_running_batch(server)
    server.advance(5)  # validated: in progress
    assert server.upstream(f"/v1/batches/{batch_id}")["status"] == "in_progress"
    sync_once(server)

    page = guarded_page
    page.goto(f"{server.url}/projects/default/batches/?q={batch_id}")
    row = page.locator(f"#row-{batch_id}")
    expect(row.locator(".col-status .badge").first).to_have_text("in progress")
    expect(page.locator("#batch-table[data-poll]")).to_have_count(1)  # it polls while a row is unfinished
    page.evaluate("() => { window.__notReloaded = true; }")

    server.advance(120)  # every request done, output written
    assert server.upstream(f"/v1/batches/{batch_id}")["status"] == "completed"
    sync_once(server)

    expect(row.locator(".col-status .badge").first).to_have_text("completed", timeout=10_000)
    assert page.evaluate("() => window.__notReloaded === true")  # swapped in place, not reloaded
    expect(page.locator("#batch-table[data-poll]")).to_have_count(0)  # nothing unfinished: polling stops
    expect(page.locator("#find-summary")).to_contain_text("batches indexed back to the first batch; backfill done")


def chat_jsonl() -> bytes:
    """Chat requests with multi-byte text and content parts, so the browser's count must match the
    server's rule byte for byte."""
    lines = []
    for i in range(40):
        body = {
            "model": "gpt-4o-mini-2024-07-18",
            "messages": [
                {"role": "system", "content": "Réponds en français, s'il te plaît. 日本語もOK 🙂"},
                {"role": "user", "content": [{"type": "text", "text": f"Question {i}: " + "why? " * (i % 7)}]},
            ],
            "max_tokens": 50,
        }
        lines.append(json.dumps({"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions", "body": body},
                                ensure_ascii=i % 2 == 0))
    return ("\n".join(lines) + "\n").encode()


def test_the_create_page_estimates_the_cost_in_the_browser_before_any_upload(guarded_page: Page, server):
    from batches.oversight.estimate import estimate_jsonl

    data = chat_jsonl()
    expected = estimate_jsonl(data)
    assert expected.input_price.known and expected.requests == 40
    before = server.stats()["counts"].get("POST /v1/files", 0)

    page = guarded_page
    page.goto(f"{server.url}/projects/default/batches/new/")
    expect(page.locator("#estimate-result")).to_contain_text("Choose a file")  # JavaScript took over
    page.set_input_files("#id_file", files=[{"name": "chat.jsonl", "mimeType": "application/jsonl", "buffer": data}])
    result = page.locator("#estimate-result")
    expect(result).to_contain_text("Estimated input cost: ", timeout=10_000)
    expect(result).to_contain_text(f"about {expected.input_tokens:,} input tokens in 40 requests")
    expect(result).to_contain_text(f"Estimated input cost: {expected.input_price.display} ")
    expect(result).to_contain_text("estimate; OpenAI's bill is authoritative")
    assert server.stats()["counts"].get("POST /v1/files", 0) == before  # nothing was uploaded


def test_a_model_without_a_price_is_estimated_as_no_price_with_the_reason(guarded_page: Page, server):
    line = {"custom_id": "x", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "mystery-model", "messages": [{"role": "user", "content": "hi"}]}}
    page = guarded_page
    page.goto(f"{server.url}/projects/default/batches/new/")
    page.set_input_files("#id_file", files=[{"name": "m.jsonl", "mimeType": "application/jsonl",
                                             "buffer": (json.dumps(line) + "\n").encode()}])
    result = page.locator("#estimate-result")
    # "hi": 2 bytes → 1 token, plus 3 for the message.
    expect(result).to_contain_text("Estimated input cost: no price (about 4 input tokens in 1 request)", timeout=10_000)
    expect(result).to_contain_text("does not know the model “mystery-model”")
