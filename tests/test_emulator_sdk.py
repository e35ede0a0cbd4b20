"""The emulator driven by the official openai SDK: shapes and errors must parse the way the SDK expects."""

import json

import openai
import pytest

from tests.emulator_helpers import module_emulator

KEY = "sk-emulator"
_server, srv = module_emulator(api_key=KEY, seed=True)


@pytest.fixture
def sdk(srv):
    client = openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=0)
    yield client
    client.close()


def write_input(tmp_path, n=12):
    path = tmp_path / "input.jsonl"
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps({"custom_id": "task-%d" % i, "method": "POST", "url": "/v1/chat/completions",
                                 "body": {"model": "gpt-4o-mini",
                                          "messages": [{"role": "user", "content": "Say %d" % i}]}}) + "\n")
    return path


def test_sdk_uploads_a_file_and_reads_it_back(sdk, tmp_path):
    path = write_input(tmp_path)
    with open(path, "rb") as fh:
        f = sdk.files.create(file=fh, purpose="batch")
    assert f.id.startswith("file-") and f.purpose == "batch" and f.bytes == path.stat().st_size
    assert f.filename == "input.jsonl" and f.status == "processed"
    assert sdk.files.retrieve(f.id).id == f.id
    assert sdk.files.content(f.id).read() == path.read_bytes()


def test_sdk_creates_retrieves_and_runs_a_batch_to_completion(srv, sdk, tmp_path):
    with open(write_input(tmp_path), "rb") as fh:
        f = sdk.files.create(file=fh, purpose="batch")
    b = sdk.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
                           metadata={"description": "nightly eval run 42"})
    assert b.status == "validating" and b.metadata == {"description": "nightly eval run 42"}
    assert b.request_counts.total == 0
    for _ in range(20):
        srv.state.advance(2)
        b = sdk.batches.retrieve(b.id)
        if b.status == "completed":
            break
    assert b.status == "completed" and b.model == "gpt-4o-mini"
    assert b.request_counts.completed + b.request_counts.failed == 12
    assert b.usage is not None and b.usage.total_tokens == b.usage.input_tokens + b.usage.output_tokens
    lines = sdk.files.content(b.output_file_id).read().decode().splitlines()
    if b.error_file_id:
        lines += sdk.files.content(b.error_file_id).read().decode().splitlines()
    assert sorted(json.loads(x)["custom_id"] for x in lines) == sorted("task-%d" % i for i in range(12))


def test_sdk_cancel_returns_cancelling_and_conflict_error_on_finished_batch(sdk, srv, tmp_path):
    with open(write_input(tmp_path), "rb") as fh:
        f = sdk.files.create(file=fh, purpose="batch")
    b = sdk.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    c = sdk.batches.cancel(b.id)
    assert c.status == "cancelling" and c.cancelling_at is not None
    srv.state.advance(5)
    assert sdk.batches.retrieve(b.id).status == "cancelled"
    with pytest.raises(openai.ConflictError) as exc:
        sdk.batches.cancel(b.id)
    assert exc.value.status_code == 409
    assert "Cannot cancel a batch with status 'cancelled'." in exc.value.message
    assert exc.value.request_id.startswith("req_")


def test_sdk_maps_errors_to_the_right_exceptions(sdk, srv):
    with pytest.raises(openai.NotFoundError):
        sdk.batches.retrieve("batch_missing")
    with pytest.raises(openai.NotFoundError):
        sdk.files.retrieve("file-missing")
    with pytest.raises(openai.BadRequestError) as exc:
        sdk.batches.create(input_file_id="file-missing", endpoint="/v1/nope", completion_window="24h")
    assert exc.value.param == "endpoint"
    with pytest.raises(openai.BadRequestError):
        sdk.batches.list(limit=500)
    bad = openai.OpenAI(base_url=srv.base_url, api_key="sk-wrong-key-1234", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.batches.list()
    assert exc.value.code == "invalid_api_key"
    bad.close()


def test_sdk_auto_pagination_returns_every_seeded_batch_once_newest_first(sdk, srv):
    expected = [b["id"] for b in srv.state.list_batches()]
    assert len(expected) >= 60
    srv.state.reset_counts()
    seen = [b.id for b in sdk.batches.list(limit=7)]
    assert seen == expected
    assert len(set(seen)) == len(seen)
    assert srv.state.counts["GET /v1/batches"] == -(-len(expected) // 7)


def test_sdk_parses_every_seeded_batch(sdk):
    statuses = set()
    for b in sdk.batches.list(limit=100):
        statuses.add(b.status)
        assert b.object == "batch" and b.completion_window == "24h"
        if b.status == "completed" and b.output_file_id:
            assert sdk.files.retrieve(b.output_file_id).purpose == "batch_output"
    assert statuses == {"validating", "in_progress", "finalizing", "completed", "failed", "expired",
                        "cancelling", "cancelled"}


def test_sdk_retries_honour_injected_retry_after(srv):
    srv.state.inject_fault(route="/v1/batches", status=429, headers={"retry-after-ms": "10"}, times=2)
    client = openai.OpenAI(base_url=srv.base_url, api_key=KEY, max_retries=2)
    try:
        page = client.batches.list(limit=3)
        assert len(page.data) == 3
    finally:
        client.close()
    assert srv.state.counts["GET /v1/batches"] == 3
