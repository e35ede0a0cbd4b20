"""Create a batch in a real headless Chromium against gunicorn + the emulator: choose (or drop) a JSONL
file, see the endpoint preselected from its first line, submit, land on the new batch's page."""

from __future__ import annotations

import json
import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.e2e


def jsonl(n: int, url: str = "/v1/embeddings") -> bytes:
    lines = (
        json.dumps({"custom_id": f"e2e-{i}", "method": "POST", "url": url,
                    "body": {"model": "text-embedding-3-small", "input": f"text {i}"}})
        for i in range(n)
    )
    return ("\n".join(lines) + "\n").encode()


def test_uploading_a_file_lands_on_the_new_batchs_page(guarded_page: Page, dashboard_server):
    page = guarded_page
    before = dashboard_server.stats()["counts"].get("POST /v1/files", 0)
    page.goto(f"{dashboard_server.url}/batches/new/")
    page.set_input_files("#id_file", files=[{"name": "embed.jsonl", "mimeType": "application/jsonl", "buffer": jsonl(5)}])
    # The endpoint is preselected from the file's first line, read in the browser.
    expect(page.locator("#id_endpoint")).to_have_value("/v1/embeddings")
    expect(page.locator("#endpoint-hint")).to_contain_text("first line")
    page.locator("input[name=metadata_key]").first.fill("team")
    page.locator("input[name=metadata_value]").first.fill("e2e")
    page.get_by_role("button", name="Validate, upload and create").click()

    page.wait_for_url(re.compile(r".*/batches/batch_[^/]+/$"))
    batch_id = page.url.rstrip("/").rsplit("/", 1)[-1]
    expect(page.locator("h1")).to_contain_text(batch_id)
    expect(page.get_by_text(f"Batch {batch_id} created.")).to_be_visible()
    assert dashboard_server.stats()["counts"].get("POST /v1/files", 0) == before + 1
    created = dashboard_server.upstream(f"/v1/batches/{batch_id}")
    assert created["endpoint"] == "/v1/embeddings" and created["metadata"] == {"team": "e2e"}


def test_a_dropped_file_is_taken_by_the_form(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/new/")
    page.evaluate(
        """(text) => {
            const data = new DataTransfer();
            data.items.add(new File([text], "dropped.jsonl", {type: "application/jsonl"}));
            const zone = document.getElementById("dropzone");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: data, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
        }""",
        jsonl(2, url="/v1/chat/completions").decode(),
    )
    expect(page.locator("#file-summary")).to_contain_text("dropped.jsonl")
    expect(page.locator("#id_endpoint")).to_have_value("/v1/chat/completions")
    assert page.locator("#id_file").evaluate("input => input.files[0].name") == "dropped.jsonl"


def test_more_metadata_rows_can_be_added_up_to_sixteen(guarded_page: Page, dashboard_server):
    page = guarded_page
    page.goto(f"{dashboard_server.url}/batches/new/")
    rows = page.locator(".metadata-row")
    expect(rows).to_have_count(4)
    add = page.get_by_role("button", name="Add a pair")
    for _ in range(12):
        add.click()
    expect(rows).to_have_count(16)
    expect(add).to_be_hidden()


def test_an_invalid_file_shows_its_errors_in_place_and_uploads_nothing(page: Page, dashboard_server):
    # Plain ``page``: Chromium logs the (intended) 400 answer as a console error.
    before = dashboard_server.stats()["counts"].get("POST /v1/files", 0)
    page.goto(f"{dashboard_server.url}/batches/new/")
    bad = jsonl(2) + b'{"custom_id": "e2e-0", "method": "POST", "url": "/v1/embeddings", "body": {}}\n'
    page.set_input_files("#id_file", files=[{"name": "bad.jsonl", "mimeType": "application/jsonl", "buffer": bad}])
    page.get_by_role("button", name="Validate, upload and create").click()
    expect(page.locator(".validation-errors")).to_contain_text("repeats custom_id")
    expect(page.locator(".validation-errors")).to_contain_text("line 3")
    assert page.url.endswith("/projects/default/batches/new/")
    assert dashboard_server.stats()["counts"].get("POST /v1/files", 0) == before
