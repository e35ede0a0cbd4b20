"""The dashboard against the session emulator's Anthropic and Azure projects over loopback: create
(streamed inline for Anthropic, uploaded for Azure), the list and its cursor, cancel until the batch has
ended, results joined by custom_id with their usage kept, the index after a sync, and /search/ across
providers. (The independent fakes of tests/provider_fakes.py cover the same pages from the reference.)"""

from __future__ import annotations

import json
import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.index.sync import sync_project
from batches.models import BatchRecord
from batches.projects import get_project
from tests.helpers import EMULATOR_KEY

pytestmark = pytest.mark.django_db

ANTHROPIC_KEY = "sk-ant-emulator-providers"
AZURE_KEY = "azure-emulator-providers"
ROW_ID = re.compile(r'<tr id="row-([^"]+)"')
CLAUDE = {"model": "claude-haiku-4-5", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def providers(emulator, write_projects):
    """The session emulator with an Anthropic project and an Azure one (with Azure's documented loose
    shapes), and a projects file naming them beside an OpenAI project."""
    if "emu-claude" not in emulator.state.providers:
        emulator.add_key("emu-claude", ANTHROPIC_KEY, "anthropic")
        emulator.add_key("emu-azure", AZURE_KEY, "azure", {"quirks": True})
    write_projects(
        f'[projects.default]\napi_key_env = "K_OPENAI"\nbase_url = "{emulator.base_url}"\n'
        f'[projects.claude]\nname = "Claude"\napi_key_env = "K_CLAUDE"\nprovider = "anthropic"\nbase_url = "{emulator.root_url}"\n'
        f'[projects.az]\nname = "Azure"\napi_key_env = "K_AZURE"\nprovider = "azure"\nbase_url = "{emulator.root_url}"\n'
        'api_version = "2024-10-21"\ndeployments = {my-mini = "gpt-4o-mini"}\n',
        K_OPENAI=EMULATOR_KEY, K_CLAUDE=ANTHROPIC_KEY, K_AZURE=AZURE_KEY,
    )
    return emulator


def create_claude(client, n: int, token: str) -> str:
    lines = "\n".join(json.dumps({"custom_id": f"{token}-{i}", "params": CLAUDE}) for i in range(n)) + "\n"
    upload = SimpleUploadedFile("claude.jsonl", lines.encode(), content_type="application/jsonl")
    response = client.post("/projects/claude/batches/new/", {"token": token, "file": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    return response["Location"].rstrip("/").rsplit("/", 1)[-1]


def test_an_anthropic_batch_created_through_the_dashboard_runs_ends_and_its_results_join(client, providers):
    batch_id = create_claude(client, 3, "join")
    assert batch_id.startswith("msgbatch_")
    page = client.get(f"/projects/claude/batches/{batch_id}/").content.decode()
    assert "3 requests processing" in page and "% done" not in page
    providers.state.advance(3600)
    cache.clear()
    ended = client.get(f"/projects/claude/batches/{batch_id}/").content.decode()
    assert ">ended</span>" in ended and "View results" in ended
    sync_project(get_project("claude"), "test-owner")
    results = client.get(f"/projects/claude/batches/{batch_id}/results/").content.decode()
    assert all(f"join-{i}" in results for i in range(3))
    record = BatchRecord.objects.get(project="claude", batch_id=batch_id)
    assert record.provider == "anthropic" and record.provider_status == "ended"
    assert record.model == "claude-haiku-4-5" and record.input_tokens and record.output_tokens
    assert record.result_usage["claude-haiku-4-5"]["requests"] == record.completed_requests


def test_an_anthropic_cancel_is_cancelling_then_ended_as_cancelled(client, providers):
    batch_id = create_claude(client, 200, "cxl")
    assert client.post(f"/projects/claude/batches/{batch_id}/cancel/").status_code == 302
    during = client.get(f"/projects/claude/batches/{batch_id}/").content.decode()
    assert "status-cancelling" in during and ">canceling</span>" in during
    providers.state.advance(10)
    cache.clear()
    after = client.get(f"/projects/claude/batches/{batch_id}/").content.decode()
    assert "status-cancelled" in after and ">ended</span>" in after


def test_the_anthropic_list_pages_with_after_id(client, providers):
    ids = [create_claude(client, 1, f"page{n}") for n in range(3)]
    first = ROW_ID.findall(client.get("/projects/claude/batches/?limit=2").content.decode())
    second = ROW_ID.findall(client.get(f"/projects/claude/batches/?limit=2&after={first[-1]}").content.decode())
    assert len(first) == 2 and not set(first) & set(second)
    assert set(ids) <= set(first) | set(second)


def test_an_azure_batch_is_created_by_upload_and_read_in_azures_loose_shapes(client, providers):
    line = {"custom_id": "a1", "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": "my-mini", "messages": [{"role": "user", "content": "hi"}]}}
    upload = SimpleUploadedFile("az.jsonl", (json.dumps(line) + "\n").encode(), content_type="application/jsonl")
    response = client.post("/projects/az/batches/new/", {"token": "az-1", "file": upload, "endpoint": "auto",
                                                          "completion_window": "24h", "input_file_id": ""})
    assert response.status_code == 302, response.content.decode()[:2000]
    batch_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    page = client.get(f"/projects/az/batches/{batch_id}/").content.decode()
    assert "Azure OpenAI" in page
    providers.state.advance(10)  # validated: the batch now names its model (the deployment)
    sync_project(get_project("az"), "test-owner")
    record = BatchRecord.objects.get(project="az", batch_id=batch_id)
    assert (record.provider, record.model, record.price_model) == ("azure", "my-mini", "gpt-4o-mini")
    assert record.status in ("validating", "in_progress", "finalizing", "completed")
    assert record.provider_status[:1].isupper()  # Azure's REST examples' capitalised status, kept as sent


def test_search_shows_every_providers_batches_with_a_provider_column(client, providers):
    batch_id = create_claude(client, 1, "search")
    for slug in ("default", "claude"):
        sync_project(get_project(slug), "test-owner")
    body = client.get("/search/?provider=anthropic").content.decode()
    assert ROW_ID.findall(body) == [batch_id]
    assert '<td class="col-provider">Anthropic</td>' in body
    everything = client.get("/search/").content.decode()
    assert '<td class="col-provider">OpenAI</td>' in everything
