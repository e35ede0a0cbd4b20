"""The Anthropic and Azure clients against independent fakes of their APIs (tests/provider_fakes.py),
through httpx.MockTransport: what goes on the wire, and how the answers read into the common types."""

from __future__ import annotations

import io
import json

import httpx
import pytest

from batches.upstream import (
    AnthropicClient,
    AzureClient,
    InvalidId,
    OpenAIClient,
    UpstreamBadResponse,
    UpstreamNotFound,
    UpstreamRateLimited,
)
from provider_fakes import AnthropicFake, AzureFake


def anthropic(fake: AnthropicFake, **kwargs) -> AnthropicClient:
    return AnthropicClient(
        base_url="https://api.anthropic.com", api_key=fake.api_key, transport=httpx.MockTransport(fake),
        sleep=lambda s: None, **kwargs,
    )


def azure(fake: AzureFake, **kwargs) -> AzureClient:
    return AzureClient(
        base_url="https://res.openai.azure.com", api_key=fake.api_key, api_version=fake.api_version,
        transport=httpx.MockTransport(fake), sleep=lambda s: None, **kwargs,
    )


# -- Anthropic -------------------------------------------------------------------------------------


def test_anthropic_requests_carry_the_key_and_the_anthropic_version_header():
    fake = AnthropicFake()
    fake.add(["a"])
    anthropic(fake).list_page()
    request = fake.seen[-1]
    assert request.url.path == "/v1/messages/batches"
    assert request.headers["x-api-key"] == fake.api_key
    assert request.headers["authorization"] == f"Bearer {fake.api_key}"
    assert request.headers["anthropic-version"] == "2023-06-01"


def test_anthropic_list_pages_with_after_id_from_last_id_until_has_more_is_false():
    fake = AnthropicFake()
    for n in range(5):
        fake.add([f"r{n}"])
    client = anthropic(fake)
    seen, cursor, calls = [], None, 0
    while True:
        page = client.list_page(after=cursor, limit=2)
        calls += 1
        seen += [b.id for b in page.data]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == list(reversed(fake.order))
    assert calls == 3
    assert [r.url.params.get("after_id") for r in fake.seen] == [None, fake.order[3], fake.order[1]]


def test_anthropic_list_can_page_backwards_with_before_id():
    fake = AnthropicFake()
    for n in range(4):
        fake.add([f"r{n}"])
    page = anthropic(fake).list_batches(before=fake.order[1], limit=10)
    assert [b.id for b in page.data] == [fake.order[3], fake.order[2]]
    assert fake.seen[-1].url.params["before_id"] == fake.order[1]


def test_an_anthropic_batch_in_progress_reads_as_in_progress_with_all_requests_processing():
    fake = AnthropicFake()
    created = fake.add(["a", "b", "c"])
    batch = anthropic(fake).retrieve_batch(created["id"])
    assert (batch.status, batch.provider, batch.provider_status) == ("in_progress", "anthropic", "in_progress")
    assert batch.counts_live is False and batch.processing == 3
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (3, 0, 0)
    assert batch.created_at == 1796623200 and batch.expires_at == 1796623200 + 86400
    assert batch.in_progress_at == batch.created_at
    assert batch.endpoint == "/v1/messages" and batch.results_url is None and not batch.has_results


def test_an_anthropic_batch_read_with_an_offset_timestamp_gets_the_same_time():
    fake = AnthropicFake()
    fake.add(["a"])
    second = fake.add(["b"])  # created_at with "+00:00" and no microseconds
    assert "+00:00" in second["created_at"]
    assert anthropic(fake).retrieve_batch(second["id"]).created_at == 1796623200


def test_cancel_shows_canceling_as_cancelling_until_the_batch_has_ended_then_cancelled():
    fake = AnthropicFake()
    created = fake.add(["a", "b", "c"])
    client = anthropic(fake)
    cancelling = client.cancel_batch(created["id"])
    assert fake.seen[-1].method == "POST" and fake.seen[-1].url.path.endswith("/cancel")
    assert (cancelling.status, cancelling.provider_status, cancelling.is_terminal) == ("cancelling", "canceling", False)
    assert cancelling.shows_provider_status and not cancelling.can_cancel
    assert cancelling.cancelling_at is not None
    fake.end(created["id"])
    ended = client.retrieve_batch(created["id"])
    assert (ended.status, ended.provider_status, ended.is_terminal) == ("cancelled", "ended", True)
    assert dict(ended.native_counts) == {"processing": 0, "succeeded": 1, "errored": 0, "canceled": 2, "expired": 0}
    assert ended.cancelled_at is not None and ended.completed_at is None
    assert ended.request_counts.pending == 2  # the canceled ones: not run


def test_an_ended_batch_with_expired_requests_reads_as_expired_and_one_without_as_completed():
    fake = AnthropicFake()
    first, second = fake.add(["a", "b"]), fake.add(["c", "d"])
    fake.end(first["id"], expired=("b",))
    fake.end(second["id"], errored=("d",))
    client = anthropic(fake)
    expired, completed = client.retrieve_batch(first["id"]), client.retrieve_batch(second["id"])
    assert (expired.status, expired.expired_at is not None) == ("expired", True)
    assert (completed.status, completed.request_counts.completed, completed.request_counts.failed) == ("completed", 1, 1)
    assert completed.has_results


def test_an_id_that_is_not_a_message_batch_id_is_refused_before_any_request():
    fake = AnthropicFake()
    with pytest.raises(InvalidId, match="not an Anthropic message batch id"):
        anthropic(fake).retrieve_batch("batch_abc")
    with pytest.raises(InvalidId):
        anthropic(fake).cancel_batch("msgbatch_../../v1/files")
    assert fake.seen == []


def test_an_unknown_processing_status_renders_as_sent():
    batch = AnthropicClient.parse_batch({"id": "msgbatch_x", "processing_status": "paused", "request_counts": None})
    assert batch.status == "paused" and not batch.is_known_status and batch.request_counts is None


def test_create_streams_the_file_as_the_inline_requests_body_with_its_length():
    fake = AnthropicFake()
    lines = [json.dumps({"custom_id": f"r{n}", "params": {"model": "claude-haiku-4-5", "max_tokens": 5,
                                                          "messages": [{"role": "user", "content": "x"}]}})
             for n in range(3)]
    handle = io.BytesIO(("\n".join(lines) + "\r\n\n").encode())
    batch = anthropic(fake).create_batch_inline(handle)
    sent = fake.seen[-1]
    assert sent.method == "POST" and sent.url.path == "/v1/messages/batches"
    assert sent.headers["content-type"] == "application/json"
    assert int(sent.headers["content-length"]) == len(fake.bodies[-1])
    assert "transfer-encoding" not in sent.headers
    assert [r["custom_id"] for r in json.loads(fake.bodies[-1])["requests"]] == ["r0", "r1", "r2"]
    assert batch.id.startswith("msgbatch_") and batch.status == "in_progress" and batch.processing == 3


def test_anthropic_errors_become_sentences_with_the_request_id():
    def handler(request):
        return httpx.Response(429, json={"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}},
                              headers={"request-id": "req_42", "retry-after": "30"})

    client = AnthropicClient(base_url="https://api.anthropic.com", api_key="k", transport=httpx.MockTransport(handler),
                             sleep=lambda s: None)
    with pytest.raises(UpstreamRateLimited) as caught:
        client.list_page()
    assert caught.value.request_id == "req_42" and caught.value.retry_after == 30.0
    assert "k" not in str(caught.value).split()


def test_results_come_from_results_url_in_the_common_shape_with_usage_summed_per_model():
    fake = AnthropicFake()
    created = fake.add(["a", "b", "c", "d"])
    fake.end(created["id"], errored=("b",), expired=("c",))
    client = anthropic(fake)
    batch = client.retrieve_batch(created["id"])
    records = client.result_records(batch)
    by_id = {r["custom_id"]: r for r in records}
    assert fake.seen[-1].url.path == f"/v1/messages/batches/{created['id']}/results"
    assert by_id["a"]["response"]["status_code"] == 200 and by_id["a"]["response"]["body"]["type"] == "message"
    assert by_id["b"]["response"]["status_code"] == 400
    assert by_id["b"]["response"]["body"]["error"]["type"] == "invalid_request_error"
    assert by_id["c"]["error"]["code"] == "batch_expired"
    assert by_id["d"]["response"]["status_code"] == 200
    tally = records.usage["claude-sonnet-4-6"]
    # input_tokens plus the cache reads (Anthropic counts them apart), two successful requests
    assert (tally.input_tokens, tally.cached_tokens, tally.output_tokens, tally.requests) == (2400, 400, 1000, 2)


def test_a_results_url_on_another_host_is_read_from_the_projects_own_base_url_never_elsewhere():
    fake = AnthropicFake(base_url="https://elsewhere.example")
    created = fake.add(["a"])
    fake.end(created["id"])
    client = anthropic(fake)
    batch = client.retrieve_batch(created["id"])
    list(client.result_records(batch))
    assert fake.seen[-1].url.host == "api.anthropic.com"
    odd = batch.__class__(id=batch.id, status="completed", results_url="https://evil.example/steal", provider="anthropic")
    with pytest.raises(UpstreamBadResponse, match="will not send the project's key"):
        client.result_records(odd)


def test_results_of_a_batch_still_running_say_they_come_when_it_has_ended():
    fake = AnthropicFake()
    batch = anthropic(fake).retrieve_batch(fake.add(["a"])["id"])
    with pytest.raises(UpstreamNotFound, match="once every request has finished"):
        anthropic(fake).result_records(batch)


# -- Azure ---------------------------------------------------------------------------------------


def test_azure_with_api_version_uses_the_versioned_paths_and_the_api_key_header():
    fake = AzureFake()
    fake.add("Validating")
    azure(fake).list_page()
    request = fake.seen[-1]
    assert request.url.path == "/openai/batches"
    assert request.url.params["api-version"] == "2024-10-21" and request.url.params["limit"] == "100"
    assert request.headers["api-key"] == fake.api_key and "authorization" not in request.headers


def test_azure_without_api_version_speaks_the_openai_shape_with_a_bearer_key_under_openai_v1():
    seen = []

    def handler(request):
        seen.append(request)
        return httpx.Response(200, json={"object": "list", "data": [], "has_more": False})

    AzureClient(base_url="https://res.openai.azure.com/openai/v1", api_key="k",
                transport=httpx.MockTransport(handler)).list_page()
    assert str(seen[0].url) == "https://res.openai.azure.com/openai/v1/batches?limit=100"
    assert seen[0].headers["authorization"] == "Bearer k" and "api-key" not in seen[0].headers


def test_azures_documented_loose_shapes_read_into_the_common_types():
    fake = AzureFake()
    created = fake.add("Validating")
    fake.add("InProgress", request_counts={"total": 10, "completed": 4, "failed": None}, in_progress_at=1765087500)
    client = azure(fake)
    validating = client.retrieve_batch(created["id"])
    assert (validating.status, validating.provider_status, validating.provider) == ("validating", "Validating", "azure")
    assert validating.output_file_id is None and validating.error_file_id is None and not validating.has_results
    assert validating.created_at == 1796605200  # "2026-12-07T01:00:00Z"
    assert (validating.request_counts.total, validating.request_counts.failed) == (0, 0)
    assert not validating.shows_provider_status  # only the case differs
    running = client.list_page().data[0]
    assert (running.status, running.request_counts.completed, running.request_counts.failed) == ("in_progress", 4, 0)


def test_azure_creates_with_the_endpoint_azure_documents_and_prices_through_the_deployment_map():
    fake = AzureFake()
    client = azure(fake, deployments={"my-gpt4o-mini": "gpt-4o-mini"})
    batch = client.create_batch(input_file_id="file-abc", endpoint="/v1/chat/completions")
    assert fake.creates[-1] == {"input_file_id": "file-abc", "endpoint": "/chat/completions", "completion_window": "24h"}
    assert fake.seen[-1].url.path == "/openai/batches"
    assert batch.model == "my-gpt4o-mini" and batch.price_model == "gpt-4o-mini" and batch.priced_model == "gpt-4o-mini"
    assert azure(fake).retrieve_batch(batch.id).price_model is None


def test_the_openai_client_keeps_its_paths_and_its_tolerance_for_capitalised_statuses():
    def handler(request):
        return httpx.Response(200, json={"id": "batch_1", "object": "batch", "status": "Completed", "created_at": 5,
                                         "output_file_id": "", "error_file_id": "file-e"})

    batch = OpenAIClient(base_url="https://api.openai.com/v1", api_key="k", transport=httpx.MockTransport(handler)).retrieve_batch("batch_1")
    assert (batch.status, batch.provider, batch.output_file_id, batch.error_file_id) == ("completed", "openai", None, "file-e")
