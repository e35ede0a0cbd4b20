"""Every page for an Anthropic and an Azure project, over loopback against independent fakes of their
APIs (tests/provider_fakes.py): the list with its cursor, the batch page, cancel until the batch has
ended, create with refusals by line number, results joined by custom_id with their usage kept, the
index after a sync, /search/ across providers, and a hidden project staying invisible."""

from __future__ import annotations

import contextlib
import json
import re

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile

from batches.index.sync import sync_project
from batches.models import AuditEntry, BatchRecord
from batches.projects import get_project
from find_factory import make, synced
from provider_fakes import AnthropicFake, AzureFake, LoopbackServer
from test_webhooks import SECRET, deliver, event
from tests.helpers import HTMX

pytestmark = pytest.mark.django_db

ROW_ID = re.compile(r'<tr id="row-([^"]+)"')
OPS = {"X-Forwarded-Email": "ops@example.com", "X-Forwarded-Groups": "ops"}
CLAUDE_LINE = {"model": "claude-sonnet-4-6", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def fakes(write_projects, proxy_mode):
    """An Anthropic project "claude", an Azure project "az" and an Anthropic project "secret" that only
    the secret-team sees, each served by its own fake on loopback."""
    claude, azure, secret = AnthropicFake(api_key="sk-ant-pages"), AzureFake(api_key="az-pages"), AnthropicFake(api_key="sk-ant-secret")
    with contextlib.ExitStack() as stack:
        servers = [stack.enter_context(LoopbackServer(fake)) for fake in (claude, azure, secret)]
        claude.base_url, secret.base_url = servers[0].base_url, servers[2].base_url
        write_projects(
            f'[projects.claude]\nname = "Claude"\napi_key_env = "K_CLAUDE"\nprovider = "anthropic"\nbase_url = "{servers[0].base_url}"\n'
            f'[projects.az]\nname = "Azure"\napi_key_env = "K_AZ"\nprovider = "azure"\nbase_url = "{servers[1].base_url}"\n'
            'api_version = "2024-10-21"\ndeployments = {my-gpt4o-mini = "gpt-4o-mini"}\n'
            f'[projects.secret]\nname = "Secret Claude"\napi_key_env = "K_SECRET"\nprovider = "anthropic"\n'
            f'base_url = "{servers[2].base_url}"\nviewer_groups = ["secret-team"]\n',
            K_CLAUDE=claude.api_key, K_AZ=azure.api_key, K_SECRET=secret.api_key,
        )
        yield {"claude": claude, "az": azure, "secret": secret}


def upload(lines: list[str], token="tok-1") -> dict:
    content = ("\n".join(lines) + "\n").encode()
    return {"token": token, "file": SimpleUploadedFile("requests.jsonl", content, content_type="application/jsonl")}


def test_an_anthropic_projects_list_shows_requests_processing_and_no_percentage(client, fakes):
    fake = fakes["claude"]
    running = fake.add(["a", "b", "c"])
    cancelling = fake.add(["d"])
    fake.batches[cancelling["id"]]["processing_status"] = "canceling"
    response = client.get("/projects/claude/batches/", headers=OPS)
    body = response.content.decode()
    assert response.status_code == 200
    assert ROW_ID.findall(body) == [cancelling["id"], running["id"]]
    assert '<div class="progress-text">3 requests processing</div>' in body
    assert 'aria-valuetext="3 requests processing"' in body and "aria-valuenow" not in body.split(running["id"])[1].split("</tr>")[0]
    assert '<span class="provider-status" title="Anthropic&#39;s own status">canceling</span>' in body
    assert "Anthropic sends no webhooks for batches: this list refreshes itself" in body
    assert fake.seen[-1].url.params["limit"] == "20"


def test_the_anthropic_list_follows_its_cursor_and_renders_as_an_htmx_partial(client, fakes):
    fake = fakes["claude"]
    for n in range(3):
        fake.add([f"r{n}"])
    first = client.get("/projects/claude/batches/?limit=2", headers=OPS).content.decode()
    assert ROW_ID.findall(first) == [fake.order[2], fake.order[1]]
    assert f"after={fake.order[1]}" in first
    second = client.get(f"/projects/claude/batches/?limit=2&after={fake.order[1]}", headers={**OPS, **HTMX})
    assert ROW_ID.findall(second.content.decode()) == [fake.order[0]] and "<html" not in second.content.decode()
    assert fake.seen[-1].url.params["after_id"] == fake.order[1]


def test_the_batch_page_shows_the_native_counts_and_the_provider(client, fakes):
    fake = fakes["claude"]
    batch = fake.add(["a", "b"])
    body = client.get(f"/projects/claude/batches/{batch['id']}/", headers=OPS).content.decode()
    assert "<caption class=\"muted\">Anthropic's own counts: they move only when the whole batch has ended.</caption>" in body
    assert "<tr><th scope=\"row\">Processing</th><td class=\"num\">2</td></tr>" in body
    assert "Anthropic sends no webhooks for batches: this page polls" in body
    assert "No ETA: 2 requests processing, and this provider reports no progress until the whole batch has ended." in body
    assert "% done" not in body


def test_a_batch_id_that_is_not_anthropics_is_a_404_with_no_upstream_call(client, fakes):
    response = client.get("/projects/claude/batches/batch_abc/", headers=OPS)
    assert response.status_code == 404 and "not an Anthropic message batch id" in response.content.decode()
    assert fakes["claude"].seen == []


def test_cancel_shows_cancelling_then_the_ended_batch_as_cancelled(client, fakes):
    fake = fakes["claude"]
    batch = fake.add(["a", "b", "c"])
    url = f"/projects/claude/batches/{batch['id']}/"
    response = client.post(url + "cancel/", headers=OPS)
    assert response.status_code == 302
    assert AuditEntry.objects.get(action="cancel", project="claude").outcome == "success"
    during = client.get(url, headers=OPS).content.decode()
    assert "cancelling" in during and ">canceling</span>" in during and "which has no published bound" in during
    assert BatchRecord.objects.get(project="claude", batch_id=batch["id"]).provider_status == "canceling"
    fake.end(batch["id"])
    cache.clear()  # the few seconds of the shared read cache pass
    after = client.get(url, headers=OPS).content.decode()
    assert 'status-cancelled" title="The batch was cancelled (Anthropic: ended after a cancel)' in after
    assert ">ended</span>" in after and 'hx-trigger="every' not in after
    assert "<tr><th scope=\"row\">Canceled</th><td class=\"num\">2</td></tr>" in after


def test_create_sends_the_checked_lines_inline_and_lands_on_the_new_batch(client, fakes):
    fake = fakes["claude"]
    page = client.get("/projects/claude/batches/new/", headers=OPS).content.decode()
    assert "Lines for this project (Anthropic)" in page and "&quot;custom_id&quot;: &quot;request-1&quot;, &quot;params&quot;" in page
    assert 'name="input_file_id"' not in page and 'name="metadata_key"' not in page
    lines = [json.dumps({"custom_id": f"q-{n}", "params": CLAUDE_LINE}) for n in range(3)]
    response = client.post("/projects/claude/batches/new/", upload(lines), headers=OPS)
    created = fake.order[-1]
    assert response.status_code == 302 and response["Location"] == f"/projects/claude/batches/{created}/"
    assert [r["custom_id"] for r in fake.requests[created]] == ["q-0", "q-1", "q-2"]
    entry = AuditEntry.objects.get(action="create", project="claude")
    assert (entry.batch_id, entry.outcome, entry.upstream_status) == (created, "success", 200)
    assert BatchRecord.objects.get(project="claude", batch_id=created).created_by == "ops@example.com"


def test_create_refuses_bad_lines_with_their_numbers_and_sends_nothing(client, fakes):
    lines = [json.dumps({"custom_id": "ok", "params": CLAUDE_LINE}), json.dumps({"custom_id": "bad id!", "params": CLAUDE_LINE}),
             json.dumps({"custom_id": "x", "params": {**CLAUDE_LINE, "stream": True}})]
    response = client.post("/projects/claude/batches/new/", upload(lines), headers=OPS)
    body = response.content.decode()
    assert response.status_code == 400
    assert '<span class="line-no">line 2</span> has custom_id “bad id!”' in body
    assert '<span class="line-no">line 3</span> sets params.stream to true' in body
    assert fakes["claude"].seen == []


def test_results_are_joined_by_custom_id_and_their_usage_prices_the_batch(client, fakes):
    fake = fakes["claude"]
    batch = fake.add(["a", "b", "c", "d"])
    fake.end(batch["id"], errored=("b",), expired=("c",))
    sync_project(get_project("claude"), "test-owner")
    response = client.get(f"/projects/claude/batches/{batch['id']}/results/", headers=OPS)
    body = response.content.decode()
    assert response.status_code == 200
    assert "Answer to a" in body and "Answer to d" in body and "max_tokens: too large" in body
    assert "This request was not run before the batch expired" in body
    record = BatchRecord.objects.get(project="claude", batch_id=batch["id"])
    assert (record.model, record.input_tokens, record.cached_tokens, record.output_tokens) == ("claude-sonnet-4-6", 2400, 400, 1000)
    assert record.result_usage == {"claude-sonnet-4-6": {"input": 2400, "cached": 400, "output": 1000, "requests": 2}}
    page = client.get(f"/projects/claude/batches/{batch['id']}/", headers=OPS).content.decode()
    # 2,000 uncached input at $1.50, 400 cached at $0.15, 1,000 output at $7.50 per MTok: $0.01056
    assert '<dt>Estimated cost</dt><dd><strong class="cost">$0.01</strong> <span class="muted">at 1.5000 / 0.1500 / 7.5000 $ per 1M' in page
    assert "summed from the usage of the batch&#x27;s result lines" in page


def test_a_sync_indexes_anthropic_batches_with_their_provider_and_native_status(fakes):
    fake = fakes["claude"]
    for n in range(3):
        fake.add([f"r{n}"])
    fake.end(fake.order[0])
    result = sync_project(get_project("claude"), "test-owner", page_size=2)
    assert result.ok and result.backfill_done
    rows = {r.batch_id: r for r in BatchRecord.objects.filter(project="claude")}
    assert set(rows) == set(fake.order)
    assert (rows[fake.order[0]].status, rows[fake.order[0]].provider_status, rows[fake.order[0]].provider) == ("completed", "ended", "anthropic")
    assert rows[fake.order[2]].status == "in_progress" and rows[fake.order[2]].total_requests == 1
    assert [r.url.params.get("after_id") for r in fake.seen if r.url.path == "/v1/messages/batches"] == [None, fake.order[1]]


def test_search_spans_providers_with_a_provider_column_and_filter_and_hides_the_hidden_project(client, fakes, write_projects):
    claude, azure, secret = fakes["claude"], fakes["az"], fakes["secret"]
    claude.add(["a"])
    azure.add("Validating")
    secret.add(["s"])
    for slug in ("claude", "az", "secret"):
        synced(slug)
        sync_project(get_project(slug), "test-owner")
    body = client.get("/search/", headers=OPS).content.decode()
    assert ROW_ID.findall(body) == [azure.batches[0]["id"], claude.order[0]] or set(ROW_ID.findall(body)) == {azure.batches[0]["id"], claude.order[0]}
    assert '<td class="col-provider">Anthropic</td>' in body and '<td class="col-provider">Azure OpenAI</td>' in body
    assert "Secret Claude" not in body and secret.order[0] not in body
    only = client.get("/search/?provider=anthropic", headers=OPS).content.decode()
    assert ROW_ID.findall(only) == [claude.order[0]]
    assert '<option value="anthropic" selected>Anthropic</option>' in only
    wrong = client.get("/search/?provider=bedrock", headers=OPS).content.decode()
    assert "There is no provider “bedrock” (only openai, azure, anthropic); that filter is ignored." in wrong
    assert client.get(f"/projects/secret/batches/{secret.order[0]}/", headers=OPS).status_code == 404
    assert len([r for r in secret.seen if r.url.path != "/v1/messages/batches"]) == 0


def test_an_azure_projects_pages_read_its_loose_shapes(client, fakes):
    azure = fakes["az"]
    batch = azure.add("InProgress", request_counts={"total": 10, "completed": 4, "failed": None})
    body = client.get("/projects/az/batches/", headers=OPS).content.decode()
    assert ROW_ID.findall(body) == [batch["id"]]
    assert '<span class="num-ok">4</span> / 10' in body
    detail = client.get(f"/projects/az/batches/{batch['id']}/", headers=OPS).content.decode()
    assert "Azure OpenAI" in detail and "<code>InProgress</code>" in detail
    assert azure.seen[-1].url.params["api-version"] == "2024-10-21"


def test_a_hidden_anthropic_project_answers_404_with_no_upstream_call(client, fakes):
    assert client.get("/projects/secret/batches/", headers=OPS).status_code == 404
    assert fakes["secret"].seen == []


def test_index_rows_of_every_provider_are_priced_with_their_own_rules(client, fakes):
    synced("claude")
    make("claude", id="msgbatch_x1", status="completed", created_at=1_700_000_000)
    BatchRecord.objects.filter(batch_id="msgbatch_x1").update(provider="anthropic", raw={
        "id": "msgbatch_x1", "processing_status": "ended", "request_counts": {"succeeded": 2},
        "created_at": "2023-11-14T22:13:20Z"}, model="claude-sonnet-4-6", input_tokens=1_000_000, cached_tokens=0,
        output_tokens=0, result_usage={"claude-sonnet-4-6": {"input": 1_000_000, "cached": 0, "output": 0, "requests": 2}})
    body = client.get("/projects/claude/batches/?status=completed", headers=OPS).content.decode()
    assert ROW_ID.findall(body) == ["msgbatch_x1"]
    assert '<span class="cost">$1.50</span>' in body
    assert 'title="Anthropic&#39;s own status">ended</span>' in body


def test_an_azure_batch_event_is_verified_like_openais_and_refreshes_through_the_azure_client(
    client, write_projects, immediate_tasks, django_capture_on_commit_callbacks
):
    azure = AzureFake(api_key="az-hook")
    with LoopbackServer(azure) as server:
        write_projects(
            f'[projects.az]\napi_key_env = "K_AZ_HOOK"\nprovider = "azure"\nbase_url = "{server.base_url}"\n'
            'api_version = "2024-10-21"\nwebhook_secret_env = "AZ_HOOK_SECRET"\n',
            K_AZ_HOOK=azure.api_key, AZ_HOOK_SECRET=SECRET,
        )
        batch = azure.add("Completed", request_counts={"total": 2, "completed": 2, "failed": 0}, output_file_id="file-out")
        with django_capture_on_commit_callbacks(execute=True):
            response = deliver(client, event(batch["id"], "batch.completed"), url="/webhooks/openai/az/")
    assert response.status_code == 200
    assert f"/openai/batches/{batch['id']}" in [request.url.path for request in azure.seen]
    record = BatchRecord.objects.get(project="az", batch_id=batch["id"])
    assert (record.status, record.provider, record.provider_status, record.output_file_id) == ("completed", "azure", "Completed", "file-out")


def test_an_anthropic_results_file_downloads_as_sent_and_no_retry_is_offered_without_an_input_file(client, fakes):
    fake = fakes["claude"]
    batch = fake.add(["a", "b"])
    fake.end(batch["id"], errored=("b",))
    response = client.get(f"/projects/claude/batches/{batch['id']}/files/results.jsonl", headers=OPS)
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{batch["id"]}_results.jsonl"'
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["a", "b"] and lines[0]["result"]["type"] in ("succeeded", "errored")
    page = client.get(f"/projects/claude/batches/{batch['id']}/results/", headers=OPS).content.decode()
    assert f'/projects/claude/batches/{batch["id"]}/files/results.jsonl' in page
    assert 'id="retry"' not in page and "Rows are in result order: Anthropic keeps no input file." in page
    running = fake.add(["c"])
    assert client.get(f"/projects/claude/batches/{running['id']}/files/results.jsonl", headers=OPS).status_code == 404


def test_the_search_export_names_each_rows_provider_and_its_own_status(client, fakes):
    fake = fakes["claude"]
    batch = fake.add(["a"])
    fake.end(batch["id"])
    sync_project(get_project("claude"), "test-owner")
    body = b"".join(client.get("/search/export.csv?provider=anthropic", headers=OPS).streaming_content).decode()
    header, row = body.splitlines()[:2]
    columns = header.split(",")
    values = dict(zip(columns, row.split(",")))
    assert (values["batch_id"], values["status"], values["provider"], values["provider_status"]) == (
        batch["id"], "completed", "anthropic", "ended")


def test_the_projects_page_names_each_projects_provider(client, fakes):
    body = client.get("/projects/", headers=OPS).content.decode()
    assert '<code>claude</code> <span class="muted">Anthropic</span>' in body
    assert '<code>az</code> <span class="muted">Azure OpenAI</span>' in body
    assert "secret" not in body
