"""Oracles for the emulator's other provider shapes: the official ``anthropic`` SDK's Message Batches, the
``openai`` SDK's ``AzureOpenAI`` client (versioned paths) and ``OpenAI`` on Azure's v1 paths, and the
``openai`` SDK's Admin API reports. If a shape or an error drifts from what the SDKs expect, these fail."""

import json
import time

import anthropic
import httpx
import openai
import pytest

from tests.emulator_helpers import module_emulator

OPENAI_KEY = "sk-oracle-openai"
ANTHROPIC_KEY = "sk-ant-oracle"
AZURE_KEY = "azure-oracle-key"
ADMIN_KEY = "sk-admin-oracle"

_server, srv = module_emulator(api_keys={"default": OPENAI_KEY}, anthropic_keys={"claude": ANTHROPIC_KEY},
                               azure_keys={"eu": AZURE_KEY}, admin_keys=[ADMIN_KEY], seed=True, fail_percent=0)


@pytest.fixture
def claude(srv):
    with anthropic.Anthropic(api_key=ANTHROPIC_KEY, base_url=srv.root_url, max_retries=0) as client:
        yield client


@pytest.fixture
def azure(srv):
    with openai.AzureOpenAI(api_key=AZURE_KEY, api_version="2024-10-21", azure_endpoint=srv.root_url,
                            max_retries=0) as client:
        yield client


def message_requests(n, **params):
    return [{"custom_id": "req-%d" % i, "params": dict({"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [
        {"role": "user", "content": "Summarise item %d" % i}]}, **params)} for i in range(n)]


# ------------------------------------------------------------------ Anthropic


def test_anthropic_sdk_creates_a_batch_that_stays_processing_until_it_has_ended(srv, claude):
    batch = claude.messages.batches.create(requests=message_requests(30))
    assert batch.id.startswith("msgbatch_") and batch.type == "message_batch"
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 30 and batch.expires_at.timestamp() - batch.created_at.timestamp() == 86400
    srv.state.advance(1)  # 10 of 30 requests done: the counts do not tick (NOTES §1.3)
    assert claude.messages.batches.retrieve(batch.id).request_counts.processing == 30
    srv.state.advance(5)
    ended = claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.ended_at is not None and ended.cancel_initiated_at is None
    counts = ended.request_counts
    assert (counts.processing, counts.succeeded, counts.errored, counts.canceled, counts.expired) == (0, 30, 0, 0, 0)
    assert ended.results_url == "%s/v1/messages/batches/%s/results" % (srv.root_url, batch.id)


def test_anthropic_sdk_reads_results_of_every_kind_joined_by_custom_id(srv, claude):
    reqs = message_requests(4)
    reqs[1]["params"]["max_tokens"] = 0  # refused by the Messages API: an errored result
    batch = claude.messages.batches.create(requests=reqs)
    srv.state.advance(5)
    results = {r.custom_id: r.result for r in claude.messages.batches.results(batch.id)}
    assert sorted(results) == ["req-0", "req-1", "req-2", "req-3"]
    assert results["req-1"].type == "errored" and results["req-1"].error.error.type == "invalid_request_error"
    ok = results["req-0"]
    assert ok.type == "succeeded" and ok.message.usage.service_tier == "batch"
    assert ok.message.content[0].type == "text" and ok.message.model == "claude-sonnet-4-6"


def test_anthropic_sdk_cancels_canceling_then_ended_with_canceled_and_expired_results(srv, claude):
    batch = claude.messages.batches.create(requests=message_requests(100))
    srv.state.advance(2)  # 20 requests done
    canceling = claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status == "canceling" and canceling.cancel_initiated_at is not None
    srv.state.advance(3)
    ended = claude.messages.batches.retrieve(batch.id)
    assert ended.processing_status == "ended" and ended.cancel_initiated_at == canceling.cancel_initiated_at
    assert (ended.request_counts.succeeded, ended.request_counts.canceled) == (20, 80)
    kinds = [r.result.type for r in claude.messages.batches.results(batch.id)]
    assert kinds.count("canceled") == 80 and kinds.count("succeeded") == 20
    other = claude.messages.batches.create(requests=message_requests(50))
    srv.state.advance(1)
    assert httpx.post("%s/_emulator/batches/%s/expire" % (srv.root_url, other.id)).status_code == 200
    expired = claude.messages.batches.retrieve(other.id)
    assert expired.processing_status == "ended" and expired.request_counts.expired == 40
    assert sum(r.result.type == "expired" for r in claude.messages.batches.results(other.id)) == 40


def test_anthropic_sdk_pages_through_every_batch_newest_first_with_after_id_and_before_id(srv, claude):
    made = [claude.messages.batches.create(requests=message_requests(1)).id for _ in range(3)]
    srv.state.advance(1)
    seen = [b.id for b in claude.messages.batches.list(limit=4)]  # auto-pagination on after_id=last_id
    listed = srv.state.list_batches("claude")
    assert seen == [b["id"] for b in listed] and len(seen) == len(set(seen)) == 21 + 3
    first = claude.messages.batches.list(limit=2)
    assert first.has_more and first.first_id == seen[0] and first.last_id == seen[1]
    newer = claude.messages.batches.list(before_id=seen[3], limit=2)
    assert [b.id for b in newer.data] == seen[1:3] and newer.has_more is True
    assert set(made) <= set(seen)


def test_anthropic_sdk_deletes_an_ended_batch_and_raises_its_error_classes(srv, claude):
    batch = claude.messages.batches.create(requests=message_requests(2))
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.batches.delete(batch.id)  # still processing
    srv.state.advance(5)
    assert claude.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(batch.id)
    with anthropic.Anthropic(api_key="sk-ant-wrong", base_url=srv.root_url, max_retries=0) as wrong:
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.batches.list()
    with pytest.raises(anthropic.BadRequestError, match="custom_id"):
        claude.messages.batches.create(requests=[{"custom_id": "no spaces", "params": {}}])


# ---------------------------------------------------------------------- Azure


def write_lines(tmp_path, n, model="gpt-4o-batch"):
    path = tmp_path / "azure.jsonl"
    path.write_text("".join(json.dumps({"custom_id": "task-%d" % i, "method": "POST", "url": "/v1/chat/completions",
                                        "body": {"model": model, "messages": [{"role": "user", "content": str(i)}]}})
                            + "\n" for i in range(n)))
    return path


def test_azure_openai_client_runs_a_batch_on_the_versioned_paths(srv, azure, tmp_path):
    with open(write_lines(tmp_path, 12), "rb") as fh:
        f = azure.files.create(file=fh, purpose="batch")
    batch = azure.batches.create(input_file_id=f.id, endpoint="/chat/completions", completion_window="24h")
    assert batch.status == "validating" and batch.endpoint == "/chat/completions"
    srv.state.advance(10)
    done = azure.batches.retrieve(batch.id)
    assert done.status == "completed" and done.model == "gpt-4o-batch"  # the deployment name
    assert done.request_counts.completed == 12
    lines = [json.loads(x) for x in azure.files.content(done.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == sorted("task-%d" % i for i in range(12))
    assert azure.files.content(done.error_file_id).text == ""  # Azure keeps an empty error file (NOTES §2.6)
    assert srv.state.counts["POST /openai/batches"] == 1 and srv.state.counts["GET /openai/files/{id}/content"] == 2


def test_azure_openai_client_lists_pages_and_cancels(srv, azure):
    ids = [b.id for b in azure.batches.list(limit=7)]
    assert ids == [b["id"] for b in srv.state.list_batches("eu")] and len(ids) > 7
    running = next(b for b in srv.state.list_batches("eu") if b["status"] == "in_progress")
    assert azure.batches.cancel(running["id"]).status == "cancelling"
    with pytest.raises(openai.NotFoundError):
        azure.batches.retrieve("batch_unknown")
    with openai.AzureOpenAI(api_key="wrong", api_version="2024-10-21", azure_endpoint=srv.root_url,
                            max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            wrong.batches.list()


def test_openai_client_speaks_to_azures_v1_paths_with_a_bearer_key(srv, tmp_path):
    with openai.OpenAI(api_key=AZURE_KEY, base_url=srv.root_url + "/openai/v1/", max_retries=0) as v1:
        with open(write_lines(tmp_path, 3), "rb") as fh:
            f = v1.files.create(file=fh, purpose="batch")
        batch = v1.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert v1.batches.retrieve(batch.id).id == batch.id
    assert srv.state.counts["POST /openai/v1/batches"] == 1


# ---------------------------------------------------------------- Admin API


def test_openai_sdk_reads_costs_and_usage_pages_with_an_admin_key(srv):
    start = int(time.time()) - 10 * 86400
    with openai.OpenAI(api_key=ADMIN_KEY, admin_api_key=ADMIN_KEY, base_url=srv.base_url, max_retries=0) as admin:
        pages = [admin.admin.organization.usage.costs(start_time=start, group_by=["project_id", "line_item"], limit=3)]
        while pages[-1].has_more:  # the reports page with next_page (no auto-pagination in the SDK)
            pages.append(admin.admin.organization.usage.costs(start_time=start, group_by=["project_id", "line_item"],
                                                              limit=3, page=pages[-1].next_page))
        buckets = [b for page in pages for b in page.data]
        assert len(buckets) == 10 and [p.has_more for p in pages] == [True, True, True, False]
        results = [r for b in buckets for r in b.results]
        assert results and {r.project_id for r in results} == {srv.state.project_info()["default"]["id"]}
        assert all(r.amount.currency == "usd" and r.amount.value >= 0 for r in results)
        assert sum(r.amount.value for r in results) > 0
        usage = admin.admin.organization.usage.completions(start_time=start, group_by=["model"], limit=31)
        assert usage.data[0].object == "bucket" and not usage.has_more
        assert any(r.model and r.input_tokens > 0 for b in usage.data for r in b.results)
    with openai.OpenAI(api_key=OPENAI_KEY, admin_api_key=OPENAI_KEY, base_url=srv.base_url, max_retries=0) as project:
        with pytest.raises(openai.PermissionDeniedError, match="Missing scopes: api.usage.read"):
            project.admin.organization.usage.costs(start_time=start)
